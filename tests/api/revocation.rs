//! API keys are cached per server instance, and revocation still takes
//! effect at once: on every instance sharing the database, for every kind
//! of request (reads, writes, batched purchases, idempotent replays).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ontab::db::StatementMode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Business, Reply, TestApp};

fn assert_unauthorized(reply: &Reply) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.code(), "unauthorized", "{reply:?}");
}

/// Issues another key of `shop` through `app`: its id and plain key.
async fn second_key(app: &TestApp, shop: &Business) -> (Uuid, String) {
    let created = app.post("/v1/api-keys", &shop.key, json!({})).await;
    assert_eq!(created.status, 201, "{created:?}");
    let key = created.body["key"].as_str().expect("key shown once");
    (created.id(), key.to_owned())
}

/// `key` with its secret replaced by `other`'s: same id, wrong secret.
/// Keys are `ontab_<32 hex digits>_<secret>`.
fn with_secret_of(key: &str, other: &str) -> String {
    let id_part = "ontab_".len() + 32 + 1;
    format!("{}{}", &key[..id_part], &other[id_part..])
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.sql()
        .await
        .query_one(sql, &[])
        .await
        .expect("count query")
        .get(0)
}

#[tokio::test]
async fn a_key_revoked_on_one_instance_is_refused_at_once_by_another_that_cached_it() {
    for statements in [StatementMode::Prepared, StatementMode::Unnamed] {
        let first = TestApp::spawn_with(statements).await;
        let second = first.another_instance().await;
        let shop = first.business("Shop").await;
        let customer = first.customer(&shop, 100_000).await;
        let product = first.product(&shop, 100, 1_000).await;
        let (key_id, key) = second_key(&first, &shop).await;
        let purchase =
            json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] });

        // In use on the second instance, so cached there.
        assert_eq!(second.get("/v1/customers", &key).await.status, 200);
        let created = second
            .post(
                "/v1/customers",
                &key,
                json!({ "name": "Ann", "credit_limit": 0 }),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        let bought = second.post("/v1/purchases", &key, purchase.clone()).await;
        assert_eq!(bought.status, 201, "{bought:?}");
        let once = second
            .post_once("/v1/purchases", &key, "k-1", purchase.clone())
            .await;
        assert_eq!(once.status, 201, "{once:?}");

        let revoked = first
            .delete(&format!("/v1/api-keys/{key_id}"), &shop.key)
            .await;
        assert_eq!(revoked.status, 204, "{revoked:?}");

        assert_unauthorized(&second.get("/v1/customers", &key).await);
        assert_unauthorized(
            &second
                .post(
                    "/v1/customers",
                    &key,
                    json!({ "name": "Bo", "credit_limit": 0 }),
                )
                .await,
        );
        assert_unauthorized(&second.post("/v1/purchases", &key, purchase.clone()).await);
        // Not a replay of the stored 201.
        assert_unauthorized(
            &second
                .post_once("/v1/purchases", &key, "k-1", purchase.clone())
                .await,
        );
        // Still refused when the key comes back: it was forgotten, not
        // just refused once.
        assert_unauthorized(&second.get("/v1/customers", &key).await);

        // The business's other key is untouched on both instances.
        assert_eq!(second.get("/v1/customers", &shop.key).await.status, 200);
        assert_eq!(first.get("/v1/customers", &shop.key).await.status, 200);
        assert_eq!(count(&first, "SELECT count(*) FROM customers").await, 2);
        assert_eq!(count(&first, "SELECT count(*) FROM orders").await, 2);
        first.assert_audit_clean().await;
    }
}

/// Purchases of a key revoked while they wait in a batch queue: each is
/// answered 401 and runs nothing; the other orders of the batch commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_purchases_of_a_key_revoked_meanwhile_are_refused_and_the_rest_of_the_batch_runs() {
    // Without group commit nothing queues: each purchase begins (and
    // checks its key) before the revocation, then waits on the lock.
    if !crate::helpers::batching() {
        return;
    }
    let first = TestApp::spawn().await;
    let second = Arc::new(first.another_instance().await);
    let shop = first.business("Shop").await;
    let product = first.product(&shop, 100, 1_000).await;
    let (key_id, revoked_key) = second_key(&first, &shop).await;
    assert_eq!(second.get("/v1/customers", &revoked_key).await.status, 200);
    let mut customers = Vec::new();
    for _ in 0..16 {
        customers.push(first.customer(&shop, 100_000).await);
    }

    // Every purchase of the product waits behind this lock, so the batch
    // slots (`ontab serve --batch-max-inflight`, 2 by default) fill with
    // the first purchases and the rest queue up behind them.
    let mut holder = first.sql().await;
    let lock = holder.transaction().await.expect("begin");
    crate::helpers::lock_for_update(&lock, "products", product).await;
    let buy = |customer: Uuid, key: String| {
        let second = second.clone();
        tokio::spawn(async move {
            let body = json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] });
            second.post("/v1/purchases", &key, body).await
        })
    };
    // One at a time, so that each is a batch of its own holding a slot.
    let mut blockers = Vec::new();
    for (n, customer) in customers[..SLOTS].iter().enumerate() {
        blockers.push(buy(*customer, shop.key.clone()));
        first
            .wait_for_lock_waiters(n as i64 + 1, "fewer purchases blocked than sent")
            .await;
    }
    let queued: Vec<_> = customers[SLOTS..]
        .iter()
        .enumerate()
        .map(|(n, customer)| {
            let key = if n % 2 == 0 { &revoked_key } else { &shop.key };
            (n % 2 == 0, buy(*customer, key.clone()))
        })
        .collect();
    let revoked = first
        .delete(&format!("/v1/api-keys/{key_id}"), &shop.key)
        .await;
    assert_eq!(revoked.status, 204, "{revoked:?}");
    lock.rollback().await.expect("release the lock");

    for blocker in blockers {
        let reply = blocker.await.expect("task");
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    for (of_revoked_key, purchase) in queued {
        let reply = purchase.await.expect("task");
        if of_revoked_key {
            assert_unauthorized(&reply);
        } else {
            assert_eq!(reply.status, 201, "{reply:?}");
        }
    }
    // Of the queued, every other one carried the revoked key.
    let accepted = SLOTS + (customers.len() - SLOTS) / 2;
    assert_eq!(
        count(&first, "SELECT count(*) FROM orders").await,
        accepted as i64
    );
    let stock = first
        .get(&format!("/v1/products/{product}"), &shop.key)
        .await;
    assert_eq!(stock.body["stock"], 1_000 - accepted as i64);
    first.assert_audit_clean().await;
}

/// Batches of one business in flight at once, as `ontab serve` ships.
const SLOTS: usize = 2;

#[tokio::test]
async fn a_wrong_secret_for_a_cached_key_id_is_refused() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    assert_eq!(app.get("/v1/customers", &shop.key).await.status, 200);

    let forged = with_secret_of(&shop.key, &other.key);
    assert_ne!(forged, shop.key);
    assert_unauthorized(&app.get("/v1/customers", &forged).await);
    assert_unauthorized(
        &app.post(
            "/v1/customers",
            &forged,
            json!({ "name": "Eve", "credit_limit": 0 }),
        )
        .await,
    );
    // Refusing the forgery neither evicts nor spoils the real key.
    assert_eq!(app.get("/v1/customers", &shop.key).await.status, 200);
    assert_eq!(count(&app, "SELECT count(*) FROM customers").await, 0);
}

/// Each instance looks a key up once, then authenticates it from its cache,
/// wrong secrets included: counted by PostgreSQL's function statistics.
#[tokio::test]
async fn an_instance_looks_each_key_up_in_the_database_only_once() {
    let first = TestApp::spawn().await;
    // Before the app opens any connection: the setting applies to new ones.
    first
        .sql()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} SET track_functions = 'all'",
            first.db_name()
        ))
        .await
        .expect("track function calls");
    // Sessions the server opened at start (its housekeeping) predate the
    // setting: end them, so every session that can look a key up has it.
    end_other_sessions(&first).await;
    let second = first.another_instance().await;
    let shop = first.business("Shop").await;
    let other = first.business("Other").await;
    let forged = with_secret_of(&shop.key, &other.key);
    for _ in 0..20 {
        assert_eq!(first.get("/v1/customers", &shop.key).await.status, 200);
        assert_unauthorized(&first.get("/v1/customers", &forged).await);
    }
    for _ in 0..5 {
        assert_eq!(second.get("/v1/customers", &shop.key).await.status, 200);
    }

    // A backend reports its function statistics when it exits.
    end_other_sessions(&first).await;
    let sql = first.sql().await;
    let lookups: i64 = sql
        .query_opt(
            "SELECT calls FROM pg_stat_user_functions WHERE funcname = 'ontab_api_key'",
            &[],
        )
        .await
        .expect("function statistics")
        .map(|row| row.get(0))
        .unwrap_or(0);
    // One per instance: not one per request (45), and not zero, which would
    // mean the statistics did not count at all.
    assert_eq!(lookups, 2);
}

/// Ends every session of the test's database but one's own, and waits
/// until they are gone. Only the sessions open now: the servers' pools and
/// background tasks open new ones at once, and those cannot have looked a
/// key up (no request is sent meanwhile), so waiting for none at all raced
/// them.
async fn end_other_sessions(app: &TestApp) {
    let sql = app.sql().await;
    let pids: Vec<i32> = sql
        .query(
            "SELECT pid FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("the apps' sessions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    sql.execute(
        "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
        &[&pids],
    )
    .await
    .expect("end the apps' sessions");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY ($1)",
                &[&pids],
            )
            .await
            .expect("count")
            .get(0);
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} sessions did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
