//! The real `ontab serve` process: JSON logs with a request id on every
//! request line and no secret anywhere, and a graceful stop on SIGTERM that
//! lets an in-flight request finish.

use std::process::Stdio;
use std::time::{Duration, Instant};

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
    // Read as it is written: a pipe left unread fills (64 KiB), and the
    // server, logging at debug, then blocks on its next line. On Citus,
    // whose background rounds log more, it stalled mid-purchase that way.
    let stdout = tokio::spawn(read_all(child.stdout.take()));
    let stderr = tokio::spawn(read_all(child.stderr.take()));
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
    // `ontab_<id>_<secret>`; the base64url secret may itself hold `_`.
    let secret_part = key.splitn(3, '_').nth(2).expect("key secret").to_owned();
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
    crate::helpers::lock_for_update(&lock, "customers", customer_id).await;
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = format!("{base}/v1/purchases");
        let key = key.clone();
        let body = json!({ "customer_id": customer_id, "items": [{ "product_id": product["id"], "quantity": 1 }] });
        async move { http.post(url).bearer_auth(key).json(&body).send().await }
    });
    app.wait_for_lock_waiters(1, "the purchase never waited on the lock")
        .await;
    let pid = child.id().expect("child pid").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(status.success());
    // Stops accepting: a new connection is refused while the purchase is
    // still in flight (it waits on the lock, held until below).
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "still accepting connections 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !in_flight.is_finished(),
        "the purchase ended before the lock was released"
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

    let stdout = stdout.await.expect("stdout reader");
    let stderr = stderr.await.expect("stderr reader");
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

/// All that `pipe` carries, until it closes.
async fn read_all(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_string(&mut text)
            .await
            .expect("read the server's output");
    }
    text
}

/// Starts `ontab serve` on `port` over the test's database.
fn start_serve(app: &TestApp, port: u16) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ontab"))
        .arg("serve")
        .env("DATABASE_URL", app.database_url())
        .env("ONTAB_LISTEN", format!("127.0.0.1:{port}"))
        .env("ONTAB_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ontab serve starts")
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ontab serve did not become ready at {base}");
}

/// Sends every request with its Idempotency-Key, 32 at a time: (key,
/// status), status 0 when no answer came.
async fn send_all(
    http: reqwest::Client,
    base: String,
    key: String,
    requests: Vec<(String, &'static str, Value)>,
) -> Vec<(String, u16)> {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for (idem, path, body) in requests {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let request = http
            .post(format!("{base}{path}"))
            .bearer_auth(&key)
            .header("Idempotency-Key", &idem)
            .json(&body);
        tasks.spawn(async move {
            let status = match request.send().await {
                Ok(response) => response.status().as_u16(),
                Err(_) => 0,
            };
            drop(permit);
            (idem, status)
        });
    }
    let mut done = Vec::new();
    while let Some(result) = tasks.join_next().await {
        done.push(result.expect("request task"));
    }
    done
}

/// SIGKILL while purchases and payments are in flight: after a restart,
/// every acknowledged request is there exactly once, nothing is partial
/// (the audit is clean), and retrying every request with its
/// Idempotency-Key applies each at most once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_loses_nothing_acknowledged_and_applies_retries_once() {
    let app = TestApp::spawn().await;
    let port = free_port().await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = start_serve(&app, port);
    wait_ready(&http, &base).await;

    let shop: Value = http
        .post(format!("{base}/v1/businesses"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "Kill" }))
        .send()
        .await
        .expect("create business")
        .json()
        .await
        .expect("json");
    let key = shop["api_key"]["key"].as_str().expect("key").to_owned();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let customer: Value = post(
        "/v1/customers",
        json!({ "name": "C", "credit_limit": 1_000_000 }),
    )
    .await
    .expect("customer")
    .json()
    .await
    .expect("json");
    let product: Value = post(
        "/v1/products",
        json!({ "name": "P", "price": 10, "stock": 100_000 }),
    )
    .await
    .expect("product")
    .json()
    .await
    .expect("json");
    let (customer, product) = (customer["id"].clone(), product["id"].clone());
    // A balance for the payments to pay down, whatever order they run in.
    let opening = post(
        "/v1/purchases",
        json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 200 }] }),
    )
    .await
    .expect("opening purchase");
    assert_eq!(opening.status(), 201);

    // 400 requests with their own keys, 32 at a time; the server dies while
    // they run.
    let requests: Vec<(String, &'static str, Value)> = (0..400)
        .map(|i| {
            if i % 4 == 3 {
                (format!("pay-{i}"), "/v1/payments", json!({ "customer_id": customer, "amount": 1 }))
            } else {
                (
                    format!("buy-{i}"),
                    "/v1/purchases",
                    json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] }),
                )
            }
        })
        .collect();
    let load = tokio::spawn(send_all(
        http.clone(),
        base.clone(),
        key.clone(),
        requests.clone(),
    ));
    // Killed mid-run: once a tenth of the requests have committed.
    let sql = app.sql().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let committed: i64 = sql
            .query_one("SELECT count(*) FROM idempotency_keys", &[])
            .await
            .expect("count")
            .get(0);
        if committed >= 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {committed} requests committed in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    let first: Vec<(String, u16)> = load.await.expect("load task");
    let acknowledged: Vec<&String> = first
        .iter()
        .filter(|(_, status)| (200..300).contains(status))
        .map(|(idem, _)| idem)
        .collect();
    assert!(
        !acknowledged.is_empty(),
        "nothing was acknowledged before the kill"
    );
    assert!(
        first
            .iter()
            .all(|(_, status)| *status == 0 || *status == 201 || *status == 503),
        "{first:?}"
    );

    // Restart on the same database.
    let mut child = start_serve(&app, port);
    wait_ready(&http, &base).await;
    let stored: i64 = sql
        .query_one("SELECT count(*) FROM idempotency_keys", &[])
        .await
        .expect("count")
        .get(0);
    assert!(
        stored >= acknowledged.len() as i64,
        "an acknowledged request was lost"
    );
    app.assert_audit_clean().await;

    // Every request again, same keys: all 201, each applied exactly once.
    let again = send_all(http.clone(), base.clone(), key.clone(), requests.clone()).await;
    assert!(again.iter().all(|(_, status)| *status == 201), "{again:?}");
    let counts = sql
        .query_one(
            "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM credit_ledger WHERE kind = 'payment'),
                    (SELECT stock FROM products)",
            &[],
        )
        .await
        .expect("counts");
    let (orders, payments, stock): (i64, i64, i64) = (counts.get(0), counts.get(1), counts.get(2));
    assert_eq!(orders, 1 + 300, "each purchase exactly once");
    assert_eq!(payments, 100, "each payment exactly once");
    assert_eq!(stock, 100_000 - 200 - 300);
    app.assert_audit_clean().await;
    child.start_kill().expect("stop");
    let _ = child.wait().await;
}
