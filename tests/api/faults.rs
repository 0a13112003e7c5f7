//! PostgreSQL restarted under a running server: requests fail fast with
//! 503 while it is down (never a hang, never a 500), and the server
//! recovers by itself once it is back.

use std::time::{Duration, Instant};

use ontab::config::StatementMode;
use ontab::db::{Db, migrate};
use ontab::embedded_pg::EmbeddedPostgres;
use ontab::http::{AppState, auth::admin_token_hash, router};
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, private_pg_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_503_then_recovers_without_a_server_restart() {
    // A cluster of its own: this test stops and starts it.
    let root = private_pg_dir(&format!("ontab-restart-{}", uuid::Uuid::new_v4().simple()));
    let cluster = EmbeddedPostgres::start(&root, "ontab")
        .await
        .expect("private PostgreSQL starts");
    let config = ontab::db::parse_url(&cluster.connection_string()).expect("config");
    migrate::run_on(&config).await.expect("migrations");
    let db = Db::connect(config, 4, Duration::from_secs(2), StatementMode::Prepared)
        .expect("pool")
        .with_statement_timeout(Duration::from_secs(5));
    let state = AppState {
        db,
        admin_token_sha256: Some(admin_token_hash(ADMIN_TOKEN)),
        request_timeout: Duration::from_secs(5),
        batcher: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router(state, 1 << 20)).await });
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
