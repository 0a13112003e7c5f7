//! PostgreSQL restarted under a running server: requests fail fast with
//! 503 while it is down (never a hang, never a 500), and the server
//! recovers by itself once it is back.

use std::time::{Duration, Instant};

use ontab::embedded_pg::EmbeddedPostgres;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, private_pg_dir, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_503_then_recovers_without_a_server_restart() {
    // A cluster of its own: this test stops and starts it.
    let root = private_pg_dir(&format!("ontab-restart-{}", uuid::Uuid::new_v4().simple()));
    let cluster = EmbeddedPostgres::start(&root, "ontab")
        .await
        .expect("private PostgreSQL starts");
    let base = start_server(cluster.connection_string(), |config| {
        config.database.pool_size = 4;
        config.database.pool_timeout = Duration::from_secs(2);
        config.request_timeout = Duration::from_secs(5);
    })
    .await;
    let http = reqwest::Client::new();

    let created: serde_json::Value = http
        .post(format!("{base}/v1/businesses"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "Restart" }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let key = created["api_key"]["key"].as_str().expect("key").to_owned();
    let list = || {
        http.get(format!("{base}/v1/customers"))
            .bearer_auth(&key)
            .send()
    };
    assert_eq!(list().await.expect("list").status(), 200);

    cluster.stop().await.expect("PostgreSQL stops");
    for _ in 0..5 {
        let started = Instant::now();
        let response = list().await.expect("the server still answers");
        assert_eq!(response.status(), 503);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        let body: serde_json::Value = response.json().await.expect("problem");
        assert_eq!(body["code"], "unavailable");
        let ready = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz");
        assert_eq!(ready.status(), 503);
    }

    let cluster = EmbeddedPostgres::start(&root, "ontab")
        .await
        .expect("PostgreSQL starts again");
    let back = Instant::now();
    loop {
        let status = list().await.expect("answer").status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "not recovered within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&root);
}
