//! Never "nothing written" after COMMIT was sent (issue 11, item 1).
//!
//! The deadline bounds a request's work up to COMMIT; once COMMIT is sent,
//! the request waits for its answer however long it takes, because
//! PostgreSQL will commit whatever happens to the request. When the answer
//! can truly not be known (the connection is lost during COMMIT), the
//! answer is `500 internal` with `"outcome": "unknown"`, never the `503`
//! that promises nothing was written: the client learns the truth by
//! retrying with the same Idempotency-Key.
//!
//! COMMIT is made slow in the test's own database: a deferred constraint
//! trigger on `orders` waits, at commit, for an advisory lock the test
//! holds (a stand-in for an fsync stall or a lagging synchronous standby),
//! for the customers the test lists. Before this rule, a 2 s request
//! timeout dropped the request while its COMMIT was in flight: `503`, and
//! then the purchase committed.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ontab::db::StatementMode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, Business, Reply, TestApp, connection_string};
use crate::lossy_proxy::LossyProxy;

/// The request timeout of the reproduction (`--request-timeout 2s`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long past a request's deadline the test waits before letting its
/// COMMIT finish: the request is stamped a moment after it is sent.
const PAST_THE_DEADLINE: Duration = Duration::from_millis(300);
/// Why the stalled-COMMIT tests do not run on Citus: the stall is a
/// trigger waiting at commit for an advisory lock the test holds on the
/// node it connects to. On Citus the trigger fires on the worker that holds
/// the business, where that lock is not, and COMMIT is the coordinator's
/// two-phase commit; the outcome rules there are Citus's (docs/scale-out.md).
const STALLS_ON_ONE_NODE: &str =
    "the slow COMMIT is a trigger and an advisory lock on one node (commit_outcome.rs)";
/// The advisory lock class of the stalls (two-int form).
const STALL_CLASS: i32 = 7_041_726;

/// Installs the slow COMMIT in this test's database: orders of a customer
/// listed in `test_stall` wait at commit for the advisory lock
/// (STALL_CLASS, its `lock_key`), shared, so they wait exactly while a test
/// session holds it.
async fn install_stalls(sql: &Client) {
    sql.batch_execute(
        "CREATE TABLE test_stall (customer_id uuid PRIMARY KEY, lock_key int NOT NULL);
         CREATE FUNCTION test_commit_waits() RETURNS trigger
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_catalog AS $$
         DECLARE
             k int;
         BEGIN
             SELECT lock_key INTO k FROM test_stall WHERE customer_id = NEW.customer_id;
             IF k IS NOT NULL THEN
                 PERFORM pg_advisory_xact_lock_shared(7041726, k);
             END IF;
             RETURN NULL;
         END
         $$;
         CREATE CONSTRAINT TRIGGER test_commit_waits AFTER INSERT ON orders
             DEFERRABLE INITIALLY DEFERRED
             FOR EACH ROW EXECUTE FUNCTION test_commit_waits();",
    )
    .await
    .expect("install the slow commit");
}

/// Orders of `customer` commit only while stall `key` is not held.
async fn stall_orders_of(sql: &Client, customer: Uuid, key: i32) {
    sql.execute("INSERT INTO test_stall VALUES ($1, $2)", &[&customer, &key])
        .await
        .expect("list the customer");
}

/// `count` customers of `shop`, each with a product of its own (price 100,
/// stock 10), whose orders commit only while stall `key` is not held.
async fn stalled_purchases(
    app: &TestApp,
    shop: &Business,
    sql: &Client,
    key: i32,
    count: usize,
) -> Vec<(Uuid, Uuid)> {
    let mut purchases = Vec::new();
    for _ in 0..count {
        let customer = app.customer(shop, 10_000).await;
        stall_orders_of(sql, customer, key).await;
        purchases.push((customer, app.product(shop, 100, 10).await));
    }
    purchases
}

/// A held stall: COMMITs of the orders it covers wait until it is released.
struct Stall {
    session: Client,
    key: i32,
}

impl Stall {
    async fn hold(app: &TestApp, key: i32) -> Self {
        let session = app.sql().await;
        session
            .execute("SELECT pg_advisory_lock($1, $2)", &[&STALL_CLASS, &key])
            .await
            .expect("hold the stall");
        Self { session, key }
    }

    async fn release(&self) {
        let released: bool = self
            .session
            .query_one(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&STALL_CLASS, &self.key],
            )
            .await
            .expect("release the stall")
            .get(0);
        assert!(released, "the stall was not held");
    }
}

/// Waits (at most 10 s) until `count` sessions are inside COMMIT, waiting
/// for stall `key`; answers their pids.
async fn wait_for_stalled_commits(sql: &Client, key: i32, count: usize) -> Vec<i32> {
    let mut pids = Vec::new();
    for _ in 0..1000 {
        pids = sql
            .query(
                "SELECT pid FROM pg_locks
                  WHERE locktype = 'advisory' AND NOT granted
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2",
                &[&i64::from(STALL_CLASS), &i64::from(key)],
            )
            .await
            .expect("pg_locks")
            .iter()
            .map(|row| row.get(0))
            .collect();
        if pids.len() >= count {
            return pids;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} of {count} COMMITs wait for stall {key}", pids.len());
}

/// Holds `customer`'s row lock from a SQL session until it commits.
async fn lock_customer(app: &TestApp, customer: Uuid) -> Client {
    let client = app.sql().await;
    client.batch_execute("BEGIN").await.expect("begin");
    client
        .execute(
            "SELECT 1 FROM customers WHERE id = $1 FOR UPDATE",
            &[&customer],
        )
        .await
        .expect("lock the customer");
    client
}

/// A purchase of one `product` for `customer` at `base`, answered with
/// whatever status (a 500 included, which the harness's own requests
/// refuse).
async fn buy(
    http: reqwest::Client,
    base: String,
    api_key: String,
    idempotency_key: Option<String>,
    customer: Uuid,
    product: Uuid,
) -> Reply {
    let mut request = http
        .post(format!("{base}/v1/purchases"))
        .bearer_auth(api_key)
        .json(&json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] }));
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let headers: HeaderMap = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// `buy` in a task of its own, through `app`'s server.
fn buy_in_background(
    app: &TestApp,
    shop: &Business,
    idempotency_key: Option<&str>,
    customer: Uuid,
    product: Uuid,
) -> tokio::task::JoinHandle<Reply> {
    buy_in_background_at(&app.base_url, app, shop, idempotency_key, customer, product)
}

/// As [`buy_in_background`], from the server at `base`.
fn buy_in_background_at(
    base: &str,
    app: &TestApp,
    shop: &Business,
    idempotency_key: Option<&str>,
    customer: Uuid,
    product: Uuid,
) -> tokio::task::JoinHandle<Reply> {
    tokio::spawn(buy(
        app.http.clone(),
        base.to_owned(),
        shop.key.clone(),
        idempotency_key.map(str::to_owned),
        customer,
        product,
    ))
}

fn replayed(reply: &Reply) -> bool {
    reply
        .headers
        .get("idempotent-replayed")
        .is_some_and(|value| value == "true")
}

/// The ids of `customer`'s orders, as the superuser sees them.
async fn orders_of(sql: &Client, customer: Uuid) -> Vec<Uuid> {
    sql.query(
        "SELECT id FROM orders WHERE customer_id = $1 ORDER BY created_at, id",
        &[&customer],
    )
    .await
    .expect("orders")
    .iter()
    .map(|row| row.get(0))
    .collect()
}

async fn stock_of(sql: &Client, product: Uuid) -> i64 {
    sql.query_one("SELECT stock FROM products WHERE id = $1", &[&product])
        .await
        .expect("product")
        .get(0)
}

/// Asserts the answer for a COMMIT whose outcome the server cannot know.
fn assert_outcome_unknown(reply: &Reply, case: &str) {
    assert_eq!(reply.status, 500, "{case}: {reply:?}");
    assert_eq!(reply.code(), "internal", "{case}");
    assert_eq!(reply.body["outcome"], "unknown", "{case}: {reply:?}");
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("Idempotency-Key"), "{case}: {detail}");
}

/// The issue's reproduction: `--request-timeout 2s`, the customer's row
/// held 1.2 s (so the work ends near the deadline), COMMIT stalled until
/// the deadline has passed. With and without a key; with group commit on
/// (a lone purchase runs through the batch worker) and off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_whose_commit_outlasts_its_deadline_is_answered_201_and_applied_once() {
    if crate::helpers::skipped_on_citus(STALLS_ON_ONE_NODE) {
        return;
    }
    let app = TestApp::spawn_tuned(
        StatementMode::Prepared,
        16,
        Duration::from_secs(10),
        REQUEST_TIMEOUT,
    )
    .await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 10).await;
    let sql = app.sql().await;
    install_stalls(&sql).await;
    stall_orders_of(&sql, customer, 1).await;

    let mut orders = Vec::new();
    for key in [Some("slow-commit-1"), None] {
        let case = format!("key {key:?}");
        let stall = Stall::hold(&app, 1).await;
        let row_lock = lock_customer(&app, customer).await;
        let sent = Instant::now();
        let purchase = buy_in_background(&app, &shop, key, customer, product);
        tokio::time::sleep_until(sent + Duration::from_millis(1200)).await;
        row_lock
            .batch_execute("COMMIT")
            .await
            .expect("release the customer");
        wait_for_stalled_commits(&sql, 1, 1).await;
        tokio::time::sleep_until(sent + REQUEST_TIMEOUT + PAST_THE_DEADLINE).await;
        let answered_during_commit = purchase.is_finished();

        stall.release().await;
        let reply = purchase.await.expect("purchase task");
        let committed = orders_of(&sql, customer).await;
        assert!(
            !answered_during_commit && reply.status == 201,
            "{case}: answered while its COMMIT was under way: {reply:?}; orders now {committed:?}"
        );
        orders.push(reply.id());
        assert_eq!(committed, orders, "{case}");
        assert_eq!(stock_of(&sql, product).await, 10 - orders.len() as i64);

        if let Some(key) = key {
            let again = buy(
                app.http.clone(),
                app.base_url.clone(),
                shop.key.clone(),
                Some(key.to_owned()),
                customer,
                product,
            )
            .await;
            assert_eq!(again.status, 201, "{again:?}");
            assert!(replayed(&again), "{again:?}");
            assert_eq!(again.id(), reply.id());
            assert_eq!(orders_of(&sql, customer).await, orders, "applied once");
        }
    }
    app.assert_audit_clean().await;
}

/// The connection is lost while COMMIT waits, before PostgreSQL committed
/// (the backend is terminated inside the deferred trigger): the server
/// cannot tell, so it answers "outcome unknown", with a key or without;
/// the key's retry then runs the purchase, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_off_by_a_lost_connection_is_outcome_unknown_never_503_and_the_key_tells() {
    if crate::helpers::skipped_on_citus(STALLS_ON_ONE_NODE) {
        return;
    }
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 10).await;
    let sql = app.sql().await;
    install_stalls(&sql).await;
    stall_orders_of(&sql, customer, 1).await;

    for key in [Some("cut-off-1"), None] {
        let case = format!("key {key:?}");
        let stall = Stall::hold(&app, 1).await;
        let purchase = buy_in_background(&app, &shop, key, customer, product);
        let pids = wait_for_stalled_commits(&sql, 1, 1).await;
        sql.execute("SELECT pg_terminate_backend($1)", &[&pids[0]])
            .await
            .expect("terminate the server's session");
        let reply = purchase.await.expect("purchase task");
        assert_outcome_unknown(&reply, &case);
        stall.release().await;

        // The deferred trigger never returned: nothing was committed.
        assert_eq!(
            orders_of(&sql, customer).await,
            Vec::<Uuid>::new(),
            "{case}"
        );
        assert_eq!(stock_of(&sql, product).await, 10, "{case}");
    }

    // The key's retry tells the truth: it did not commit, so it runs now.
    let retried = buy(
        app.http.clone(),
        app.base_url.clone(),
        shop.key.clone(),
        Some("cut-off-1".to_owned()),
        customer,
        product,
    )
    .await;
    assert_eq!(retried.status, 201, "{retried:?}");
    assert!(!replayed(&retried), "nothing was stored to replay");
    assert_eq!(orders_of(&sql, customer).await, [retried.id()]);
    assert_eq!(stock_of(&sql, product).await, 9);
    app.assert_audit_clean().await;
}

/// PostgreSQL commits and the answer is lost on the way back (a proxy drops
/// it and closes the connection): "outcome unknown" again, and the key's
/// retry replays the purchase that did commit. A keyless client told `503`
/// here would have paid twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_after_it_committed_is_outcome_unknown_and_the_key_replays_it()
 {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 10).await;
    let sql = app.sql().await;
    let proxy = LossyProxy::start(app.app_login()).await;
    let lossy = app
        .another_instance_over(proxy.options_for(app.app_login()))
        .await;

    proxy.lose_the_next_commit_answer();
    let keyed = buy_in_background(&lossy, &shop, Some("lost-1"), customer, product)
        .await
        .expect("purchase task");
    assert_outcome_unknown(&keyed, "keyed");
    assert_eq!(proxy.lost(), 1);
    let committed = orders_of(&sql, customer).await;
    assert_eq!(committed.len(), 1, "PostgreSQL committed it");
    assert_eq!(stock_of(&sql, product).await, 9);

    let retried = buy_in_background(&lossy, &shop, Some("lost-1"), customer, product)
        .await
        .expect("purchase task");
    assert_eq!(retried.status, 201, "{retried:?}");
    assert!(replayed(&retried), "{retried:?}");
    assert_eq!(retried.id(), committed[0]);
    assert_eq!(orders_of(&sql, customer).await, committed, "applied once");

    proxy.lose_the_next_commit_answer();
    let keyless = buy_in_background(&lossy, &shop, None, customer, product)
        .await
        .expect("purchase task");
    assert_outcome_unknown(&keyless, "keyless");
    assert_eq!(proxy.lost(), 2);
    assert_eq!(
        orders_of(&sql, customer).await.len(),
        2,
        "it committed: `503 unavailable, nothing written` would have been a lie"
    );
    assert_eq!(stock_of(&sql, product).await, 8);
    app.assert_audit_clean().await;
}

/// Beside a batch in flight, a lone purchase does not start a batch of one
/// (`--batch-min-beside`, 16 here): it waits for company or for that
/// batch to end, then commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_beside_a_batch_in_flight_waits_for_it_to_end() {
    if crate::helpers::skipped_on_citus(STALLS_ON_ONE_NODE) {
        return;
    }
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let sql = app.sql().await;
    install_stalls(&sql).await;
    let purchases = stalled_purchases(&app, &shop, &sql, 1, 2).await;
    let stall = Stall::hold(&app, 1).await;
    // Deadlines far beyond the stall: the second purchase waits it out,
    // however slow the machine, and must not give up (503) first.
    let server = ChildServer::start_with(
        &app,
        Duration::from_secs(60),
        &[("ONTAB_BATCH_MIN_BESIDE", "16")],
    )
    .await;
    let send = |(customer, product): (Uuid, Uuid)| {
        buy_in_background_at(&server.base, &app, &shop, None, customer, product)
    };
    let first = send(purchases[0]);
    wait_for_stalled_commits(&sql, 1, 1).await;
    let second = send(purchases[1]);
    // With a batch of its own it would be inside COMMIT by now, waiting
    // for the same stall (as with `ONTAB_BATCH_MIN_BESIDE=1` above).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stalled = wait_for_stalled_commits(&sql, 1, 1).await;
    assert_eq!(stalled.len(), 1, "a batch of one started beside the first");
    assert!(
        !second.is_finished(),
        "the second purchase was answered while the first committed"
    );

    stall.release().await;
    for reply in [first, second] {
        let reply = reply.await.expect("purchase");
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    for (customer, _) in &purchases {
        assert_eq!(orders_of(&sql, *customer).await.len(), 1);
    }
    // Counted as a batch that waited beside another.
    server
        .wait_for_gauge(r#"ontab_purchase_batches_total{flush="beside"}"#, 1.0)
        .await;
    app.assert_audit_clean().await;
}

/// One batch of `customer`'s held inside COMMIT by `stall`, served by a
/// child server with two batches in flight and a batch beside another with
/// any company; `second_product` and `other_customer` are free.
struct OneBatchStalled {
    shop: Business,
    sql: Client,
    customer: Uuid,
    second_product: Uuid,
    other_customer: Uuid,
    stall: Stall,
    server: ChildServer,
    first: tokio::task::JoinHandle<Reply>,
}

impl OneBatchStalled {
    /// `request_timeout` is the server's: the deadline of every purchase.
    async fn start(app: &TestApp, request_timeout: Duration) -> Self {
        let shop = app.business("Shop").await;
        let sql = app.sql().await;
        install_stalls(&sql).await;
        let stalled = stalled_purchases(app, &shop, &sql, 1, 1).await;
        let (customer, first_product) = stalled[0];
        let second_product = app.product(&shop, 100, 10).await;
        let other_customer = app.customer(&shop, 10_000).await;
        let stall = Stall::hold(app, 1).await;
        let server = ChildServer::start(app, request_timeout).await;
        let first = buy_in_background_at(&server.base, app, &shop, None, customer, first_product);
        wait_for_stalled_commits(&sql, 1, 1).await;
        Self {
            shop,
            sql,
            customer,
            second_product,
            other_customer,
            stall,
            server,
            first,
        }
    }

    fn send(&self, app: &TestApp, customer: Uuid, product: Uuid) -> tokio::task::JoinHandle<Reply> {
        buy_in_background_at(&self.server.base, app, &self.shop, None, customer, product)
    }
}

/// Waits (at most 10 s) for a purchase that must not wait for the stalled
/// batch.
async fn answered_while_stalled(purchase: tokio::task::JoinHandle<Reply>) -> Reply {
    tokio::time::timeout(Duration::from_secs(10), purchase)
        .await
        .expect("answered while the first batch commits")
        .expect("purchase")
}

/// A purchase whose customer is in a batch in flight is held back for the
/// next batch: in a batch beside it, it would wait for that customer's lock
/// from its first statement, and keep every purchase that came with it
/// waiting too. A purchase of another customer that comes after it starts
/// beside the first batch and commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_whose_customer_is_in_a_batch_in_flight_waits_for_the_next_and_holds_no_one_back()
 {
    if crate::helpers::skipped_on_citus(STALLS_ON_ONE_NODE) {
        return;
    }
    let app = TestApp::spawn().await;
    // Deadlines far beyond the test's own waits: the customer's second
    // purchase waits out the whole stall, however slow the machine, and
    // must not give up (503) before the stall is released.
    let case = OneBatchStalled::start(&app, Duration::from_secs(60)).await;
    let other_product = app.product(&case.shop, 100, 10).await;
    let again = case.send(&app, case.customer, case.second_product);
    // Queued before the other customer's purchase, so that it is held back
    // when that one is taken (a fixed sleep was not enough on a busy CI).
    case.server
        .wait_for_gauge("ontab_purchase_queue_length", 1.0)
        .await;
    // Held back with `again` in the second slot, it would wait for the
    // first batch's COMMIT too.
    let other = answered_while_stalled(case.send(&app, case.other_customer, other_product)).await;
    assert_eq!(other.status, 201, "{other:?}");
    assert!(
        !again.is_finished(),
        "the customer's second purchase was answered first: in the second slot, \
         waiting for its customer's lock, it held the other back until its deadline"
    );
    let waiting: i64 = case
        .sql
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND wait_event IN ('transactionid', 'tuple')",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    assert_eq!(waiting, 0, "a batch waits for the customer's row lock");

    case.stall.release().await;
    for reply in [case.first, again] {
        let reply = reply.await.expect("purchase");
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    assert_eq!(orders_of(&case.sql, case.customer).await.len(), 2);
    assert_eq!(orders_of(&case.sql, case.other_customer).await.len(), 1);
    case.server
        .wait_for_gauge("ontab_purchase_held_back_total", 1.0)
        .await;
    app.assert_audit_clean().await;
}

/// A held-back purchase whose request gave up (its deadline passed) is
/// dropped, not kept: a later purchase of the same product by another
/// customer is not held back behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_back_purchase_that_gave_up_holds_no_one_back() {
    if crate::helpers::skipped_on_citus(STALLS_ON_ONE_NODE) {
        return;
    }
    let app = TestApp::spawn().await;
    let case = OneBatchStalled::start(&app, REQUEST_TIMEOUT).await;
    let again = case.send(&app, case.customer, case.second_product);
    let again = tokio::time::timeout(REQUEST_TIMEOUT * 5, again)
        .await
        .expect("the held-back purchase gives up at its deadline")
        .expect("purchase");
    assert_eq!(again.status, 503, "{again:?}");
    let sharing =
        answered_while_stalled(case.send(&app, case.other_customer, case.second_product)).await;
    assert_eq!(sharing.status, 201, "{sharing:?}");

    case.stall.release().await;
    let first = case.first.await.expect("purchase");
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(
        orders_of(&case.sql, case.customer).await.len(),
        1,
        "the one that gave up wrote nothing"
    );
    assert_eq!(stock_of(&case.sql, case.second_product).await, 9);
    app.assert_audit_clean().await;
}

/// `ontab serve` as a process of its own, so that its metrics are its own.
struct ChildServer {
    base: String,
    _child: tokio::process::Child,
}

impl ChildServer {
    /// Group commit on, as serve ships, whatever ONTAB_TEST_BATCH says.
    async fn start(app: &TestApp, request_timeout: Duration) -> Self {
        Self::start_with(app, request_timeout, &[]).await
    }

    /// As `start`, with more of serve's settings in `env`.
    async fn start_with(app: &TestApp, request_timeout: Duration, env: &[(&str, &str)]) -> Self {
        let statements = std::env::var("ONTAB_TEST_STATEMENTS").unwrap_or("prepared".into());
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ontab"))
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("ONTAB_ENV")
            .env_remove("ONTAB_LOG_FORMAT")
            .env("ONTAB_APP_DATABASE_URL", connection_string(app.app_login()))
            .env("ONTAB_LISTEN", "127.0.0.1:0")
            .env("ONTAB_ADMIN_TOKEN", ADMIN_TOKEN)
            .env(
                "ONTAB_REQUEST_TIMEOUT",
                format!("{}ms", request_timeout.as_millis()),
            )
            .env("ONTAB_BATCH_MAX_SIZE", "64")
            // Batches of one or two beside another, as these tests race them.
            .env("ONTAB_BATCH_MIN_BESIDE", "1")
            .env("ONTAB_DB_STATEMENTS", statements)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("ontab serve starts");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(base) = line.strip_prefix("ontab listening on ") {
                    return Some(base.to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("ontab serve listens");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            base,
            _child: child,
        }
    }

    /// Waits (at most 10 s) until its gauge `name` reads `value`.
    async fn wait_for_gauge(&self, name: &str, value: f64) {
        let http = reqwest::Client::new();
        let mut seen = None;
        for _ in 0..1000 {
            let text = http
                .get(format!("{}/metrics", self.base))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("metrics text");
            seen = text.lines().find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|number| number.trim().parse::<f64>().ok())
            });
            if seen == Some(value) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{name} is {seen:?}, not {value}");
    }
}

/// Group commit keeps a queue and a worker per business only while it buys:
/// after `--batch-worker-idle` without a purchase the worker ends and the
/// business leaves the map, so businesses that bought once cost nothing.
/// Purchases timed around that moment (10 ms here, with pauses of 0 to
/// 20 ms) race a worker's end against a new job: each must still be
/// answered 201, never "queue closed", and applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_business_queue_ends_and_its_next_purchase_starts_another() {
    let app = TestApp::spawn().await;
    let server = ChildServer::start_with(
        &app,
        REQUEST_TIMEOUT,
        &[("ONTAB_BATCH_WORKER_IDLE", "10ms")],
    )
    .await;
    let mut shops = Vec::new();
    for name in ["North", "South", "East"] {
        let shop = app.business(name).await;
        let customer = app.customer(&shop, 1_000_000).await;
        let product = app.product(&shop, 100, 1_000).await;
        shops.push((shop, customer, product));
    }
    let sql = app.sql().await;
    let mut pause = 0_u64;
    const ROUNDS: u64 = 40;
    for round in 0..ROUNDS {
        let replies: Vec<_> = shops
            .iter()
            .map(|(shop, customer, product)| {
                let key = format!("idle-{round}");
                buy_in_background_at(&server.base, &app, shop, Some(&key), *customer, *product)
            })
            .collect();
        for reply in replies {
            let reply = reply.await.expect("purchase task");
            assert_eq!(reply.status, 201, "round {round}: {reply:?}");
        }
        // 0, 7, 14, 1, 8, ... ms: on either side of the 10 ms idle time.
        pause = (pause + 7) % 21;
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    server.wait_for_gauge("ontab_purchase_queues", 0.0).await;
    for (shop, customer, product) in &shops {
        let again = buy(
            app.http.clone(),
            server.base.clone(),
            shop.key.clone(),
            Some("idle-0".into()),
            *customer,
            *product,
        )
        .await;
        assert!(replayed(&again), "a new worker replays: {again:?}");
        assert_eq!(orders_of(&sql, *customer).await.len(), ROUNDS as usize);
        assert_eq!(stock_of(&sql, *product).await, 1_000 - ROUNDS as i64);
    }
    app.assert_audit_clean().await;
}

/// Group commit: several purchases committed together in one batch whose
/// COMMIT outlasts their deadline are all answered 201, each applied once.
/// The batch is made deterministic: two purchases stalled in COMMIT hold
/// the business's two batch slots while four more queue (the server's
/// queue gauge says when), then the first stall ends and the four run as
/// one batch, stalled in turn until their deadline has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_commit_outlasts_its_deadline_answers_every_order_201() {
    if crate::helpers::skipped_on_citus(STALLS_ON_ONE_NODE) {
        return;
    }
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let sql = app.sql().await;
    install_stalls(&sql).await;
    let blockers = stalled_purchases(&app, &shop, &sql, 1, 2).await;
    let batch = stalled_purchases(&app, &shop, &sql, 2, 4).await;
    let first_stall = Stall::hold(&app, 1).await;
    let second_stall = Stall::hold(&app, 2).await;
    let server = Arc::new(ChildServer::start(&app, REQUEST_TIMEOUT).await);
    let send = |key: Option<&str>, (customer, product): (Uuid, Uuid)| {
        buy_in_background_at(&server.base, &app, &shop, key, customer, product)
    };

    // One after the other, so that each takes a batch slot of its own.
    let mut blocking = Vec::new();
    for (waiting, purchase) in (1..).zip(&blockers) {
        blocking.push(send(None, *purchase));
        wait_for_stalled_commits(&sql, 1, waiting).await;
    }
    let sent = Instant::now();
    let keys = [Some("batch-1"), Some("batch-2"), Some("batch-3"), None];
    let batched: Vec<_> = keys
        .iter()
        .zip(&batch)
        .map(|(key, purchase)| send(*key, *purchase))
        .collect();
    server
        .wait_for_gauge("ontab_purchase_queue_length", 4.0)
        .await;

    first_stall.release().await;
    for reply in blocking {
        let reply = reply.await.expect("blocker");
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    wait_for_stalled_commits(&sql, 2, 1).await;
    tokio::time::sleep_until(sent + REQUEST_TIMEOUT + PAST_THE_DEADLINE).await;
    let answered_during_commit = batched.iter().filter(|reply| reply.is_finished()).count();

    second_stall.release().await;
    let mut replies = Vec::new();
    for reply in batched {
        replies.push(reply.await.expect("batched purchase"));
    }
    let mut committed = Vec::new();
    for (customer, _) in &batch {
        committed.extend(orders_of(&sql, *customer).await);
    }
    assert!(
        answered_during_commit == 0 && replies.iter().all(|reply| reply.status == 201),
        "{answered_during_commit} answered while their COMMIT was under way: {:?}; orders now {committed:?}",
        replies.iter().map(|reply| reply.status).collect::<Vec<_>>()
    );
    let answered: Vec<Uuid> = replies.iter().map(Reply::id).collect();
    for ((customer, product), id) in batch.iter().zip(&answered) {
        assert_eq!(orders_of(&sql, *customer).await, [*id], "applied once");
        assert_eq!(stock_of(&sql, *product).await, 9);
    }
    let transactions: i64 = sql
        .query_one(
            "SELECT count(DISTINCT xmin::text) FROM orders WHERE id = ANY ($1)",
            &[&answered],
        )
        .await
        .expect("orders")
        .get(0);
    assert_eq!(transactions, 1, "the four were not one batch");
    for ((key, (customer, product)), id) in keys.iter().zip(&batch).zip(&answered) {
        let Some(key) = key else { continue };
        let again = buy(
            app.http.clone(),
            server.base.clone(),
            shop.key.clone(),
            Some((*key).to_owned()),
            *customer,
            *product,
        )
        .await;
        assert!(replayed(&again), "{again:?}");
        assert_eq!(again.id(), *id);
    }
    app.assert_audit_clean().await;
}

/// Pooled connections whose backends were terminated while idle (a
/// restart, an administrator, a pooler closing them) fail at BEGIN, before
/// anything that could commit was sent: the transaction takes another
/// connection instead of answering 503.
#[tokio::test]
async fn a_pooled_connection_that_died_while_idle_is_replaced_at_begin() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000_000).await;
    let product = app.product(&shop, 1, 1_000).await;
    let sql = app.sql().await;
    let mut bought = 0;
    for round in 0..5 {
        let reply = app.purchase(&shop, customer, &[(product, 1)]).await;
        assert_eq!(reply.status, 201, "round {round}, before: {reply:?}");
        bought += 1;
        // Every other session of this database: the server's pool.
        let terminated: i64 = sql
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()
                    AND backend_type = 'client backend'",
                &[],
            )
            .await
            .expect("terminate the pool's sessions")
            .get(0);
        assert!(terminated > 0, "round {round}: the pool had no session");
        let reply = app.purchase(&shop, customer, &[(product, 1)]).await;
        assert_eq!(reply.status, 201, "round {round}, after: {reply:?}");
        bought += 1;
    }
    assert_eq!(stock_of(&sql, product).await, 1_000 - bought);
}
