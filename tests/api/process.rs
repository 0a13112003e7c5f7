//! The real `ontab serve` process: JSON logs with a request id on every
//! request line and no secret anywhere, and a graceful stop on SIGTERM that
//! lets an in-flight request finish.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::helpers::{ADMIN_TOKEN, TestApp};

async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    listener.local_addr().expect("bound").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_json_without_secrets_and_drains_on_sigterm() {
    // The harness's app only provides the database; the process under test
    // serves it.
    let app = TestApp::spawn().await;
    let port = free_port().await;
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ontab"))
        .arg("serve")
        .env("DATABASE_URL", app.database_url())
        .env("ONTAB_LISTEN", format!("127.0.0.1:{port}"))
        .env("ONTAB_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("ONTAB_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ontab serve starts");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ontab serve did not become ready");

    let created: Value = http
        .post(format!("{base}/v1/businesses"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "Logged" }))
        .send()
        .await
        .expect("create business")
        .json()
        .await
        .expect("json");
    let key = created["api_key"]["key"].as_str().expect("key").to_owned();
    let secret_part = key.rsplit('_').next().expect("key secret").to_owned();
    let customer: Value = http
        .post(format!("{base}/v1/customers"))
        .bearer_auth(&key)
        .json(&json!({ "name": "Ann", "credit_limit": 100 }))
        .send()
        .await
        .expect("create customer")
        .json()
        .await
        .expect("json");
    assert!(customer["id"].is_string(), "{customer}");
    let wrong = format!("{key}x");
    let refused = http
        .get(format!("{base}/v1/customers"))
        .bearer_auth(&wrong)
        .header("x-request-id", "req-known-id")
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401);

    // A purchase in flight when SIGTERM arrives: it waits on the customer's
    // row lock, held here, which is released only after the signal.
    let customer_id = uuid::Uuid::parse_str(customer["id"].as_str().expect("id")).expect("uuid");
    let product: Value = http
        .post(format!("{base}/v1/products"))
        .bearer_auth(&key)
        .json(&json!({ "name": "Tea", "price": 10, "stock": 5 }))
        .send()
        .await
        .expect("create product")
        .json()
        .await
        .expect("json");
    let lock = app.sql().await;
    lock.batch_execute("BEGIN").await.expect("begin");
    lock.execute(
        "SELECT 1 FROM customers WHERE id = $1 FOR UPDATE",
        &[&customer_id],
    )
    .await
    .expect("lock");
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = format!("{base}/v1/purchases");
        let key = key.clone();
        let body = json!({ "customer_id": customer_id, "items": [{ "product_id": product["id"], "quantity": 1 }] });
        async move { http.post(url).bearer_auth(key).json(&body).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().expect("child pid").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Stopped accepting: a new connection is refused while the purchase
    // is still in flight.
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "a new request was accepted after SIGTERM"
    );
    lock.batch_execute("COMMIT").await.expect("release");
    let finished = in_flight
        .await
        .expect("task")
        .expect("the in-flight request got its answer");
    assert_eq!(finished.status(), 201);
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("ontab stops within its grace period")
        .expect("exit status");
    assert!(exit.success(), "exit status {exit:?}");

    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout).await.expect("stdout");
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).await.expect("stderr");
    }
    let logs = format!("{stdout}\n{stderr}");
    for secret in [ADMIN_TOKEN, key.as_str(), secret_part.as_str()] {
        assert!(!logs.contains(secret), "a secret is in the logs:\n{logs}");
    }
    let lines: Vec<Value> = logs
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "finished processing request")
        .collect();
    assert!(access.len() >= 4, "{logs}");
    for line in &access {
        let id = line["span"]["id"].as_str().unwrap_or_default();
        assert!(
            !id.is_empty() && id != "-",
            "access line without request id: {line}"
        );
    }
    assert!(
        access
            .iter()
            .any(|line| line["span"]["id"] == "req-known-id" && line["status"] == 401),
        "{logs}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line["message"] == "shutting down: finishing in-flight requests"),
        "{logs}"
    );
}
