//! The operations surface: health, request ids, metrics, and overload or a
//! stuck database answered with a quick 503 rather than a hang.

use std::time::{Duration, Instant};

use ontab::db::StatementMode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_and_readiness_answer_without_auth() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let reply = app
            .request(reqwest::Method::GET, path, None, &[], None)
            .await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let app = TestApp::spawn().await;
    let generated = app
        .request(reqwest::Method::GET, "/healthz", None, &[], None)
        .await;
    let id = generated
        .headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .expect("x-request-id on every response");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let given = app
        .request(
            reqwest::Method::GET,
            "/v1/customers",
            None,
            &[("x-request-id", "trace-me-42")],
            None,
        )
        .await;
    assert_eq!(given.status, 401);
    assert_eq!(
        given.headers.get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"trace-me-42"[..])
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_purchases_by_outcome() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 100, 1).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 1)]).await.status,
        201
    );
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 1)]).await.status,
        409
    );
    let reply = app
        .request(reqwest::Method::GET, "/metrics", None, &[], None)
        .await;
    assert_eq!(reply.status, 200);
    let content_type = reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = reply.body.as_str().expect("text body");
    for expected in [
        r#"ontab_http_requests_total{method="POST",route="/v1/purchases",status="201"}"#,
        r#"ontab_http_requests_total{method="POST",route="/v1/purchases",status="409"}"#,
        r#"ontab_http_request_duration_seconds_bucket{method="POST",route="/v1/purchases",status="201",le="0.005"}"#,
        r#"ontab_purchases_total{outcome="created"}"#,
        r#"ontab_purchases_total{outcome="insufficient_stock"}"#,
        "ontab_db_pool_max_size 16",
        "ontab_db_pool_connections",
        "ontab_db_pool_idle",
        "ontab_db_pool_waiting",
    ] {
        assert!(text.contains(expected), "no {expected} in\n{text}");
    }
    // Group commit's own metrics exist only when it is on (not in CI's
    // ONTAB_TEST_BATCH=off pass).
    if crate::helpers::batching() {
        for expected in [
            r#"ontab_purchase_batches_total{flush="idle"}"#,
            "ontab_purchase_batch_size_count",
        ] {
            assert!(text.contains(expected), "no {expected} in\n{text}");
        }
    }
    // Route templates, never raw ids, so the label space stays bounded.
    assert!(!text.contains(&customer.to_string()), "{text}");
}

/// The purchase is still waiting for a lock, its statement not yet timed
/// out, when its request gives up and the lock comes free: it must not
/// commit after its 503 (with group commit, it runs in the batch worker,
/// not in the request's own future).
#[tokio::test]
async fn a_purchase_whose_request_gave_up_is_not_committed_when_its_lock_frees() {
    let app =
        TestApp::spawn_with_timeouts(Duration::from_millis(500), Duration::from_secs(20)).await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 10).await;
    let lock = lock_customer(&app, customer).await;

    let timed_out = app
        .post_once(
            "/v1/purchases",
            &shop.key,
            "gave-up-1",
            json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(timed_out.status, 503, "{timed_out:?}");
    lock.batch_execute("COMMIT")
        .await
        .expect("release the lock");

    // A purchase still running would now take the lock and commit: read
    // the stock once nothing of the server is in flight in the database.
    app.wait_until_settled().await;
    let product_now = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(product_now.body["stock"], 10, "{product_now:?}");
    let retried = app
        .post_once(
            "/v1/purchases",
            &shop.key,
            "gave-up-1",
            json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(retried.status, 201, "{retried:?}");
    app.assert_audit_clean().await;
}

/// Holds the customer's row lock from a SQL session, so that a purchase for
/// that customer waits inside the database.
async fn lock_customer(app: &TestApp, customer: uuid::Uuid) -> tokio_postgres::Client {
    let client = app.sql().await;
    client.batch_execute("BEGIN").await.expect("begin");
    crate::helpers::lock_for_update(&client, "customers", customer).await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_is_a_quick_503_and_the_stuck_request_completes() {
    let app = std::sync::Arc::new(
        TestApp::spawn_tuned(
            StatementMode::Prepared,
            1,
            Duration::from_millis(300),
            Duration::from_secs(30),
        )
        .await,
    );
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 10).await;
    let lock = lock_customer(&app, customer).await;

    // Takes the only connection and waits on the row lock.
    let stuck = tokio::spawn({
        let app = app.clone();
        let shop = shop.clone();
        async move { app.purchase(&shop, customer, &[(product, 1)]).await }
    });
    app.wait_for_lock_waiters(1, "the purchase never waited on the lock")
        .await;

    let started = Instant::now();
    let refused = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.code(), "unavailable");
    assert!(refused.headers.contains_key("retry-after"), "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    lock.batch_execute("COMMIT")
        .await
        .expect("release the lock");
    let done = stuck.await.expect("purchase task");
    assert_eq!(done.status, 201, "{done:?}");
    let product_now = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(product_now.body["stock"], 9);
}

#[tokio::test]
async fn a_request_past_its_timeout_is_a_503_and_writes_nothing() {
    let app = TestApp::spawn_tuned(
        StatementMode::Prepared,
        4,
        Duration::from_secs(2),
        Duration::from_millis(700),
    )
    .await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 10).await;
    let lock = lock_customer(&app, customer).await;

    let started = Instant::now();
    let timed_out = app
        .post_once(
            "/v1/purchases",
            &shop.key,
            "slow-1",
            json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(timed_out.status, 503, "{timed_out:?}");
    assert_eq!(timed_out.code(), "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    lock.batch_execute("COMMIT")
        .await
        .expect("release the lock");

    // The database gave up too (statement timeout): nothing was written, and
    // the outcome was not stored, so a retry with the same key applies once.
    app.wait_until_settled().await;
    let product_now = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(product_now.body["stock"], 10, "{product_now:?}");
    let retried = app
        .post_once(
            "/v1/purchases",
            &shop.key,
            "slow-1",
            json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(retried.status, 201, "{retried:?}");
    let product_now = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(product_now.body["stock"], 9);
}
