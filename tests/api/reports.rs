//! `GET /v1/reports/overdue`: FIFO settlement, aging buckets, tenant scope.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Business, TestApp};

/// Moves a purchase's ledger entry `days` into the past. History refuses
/// updates by trigger, so this test-only time travel runs with triggers off
/// (session_replication_role = replica) as the superuser.
async fn backdate(app: &TestApp, order: &Value, days: i32) {
    let order_id = Uuid::parse_str(order["id"].as_str().expect("order id")).expect("uuid");
    // The arithmetic on timestamps without a time zone, which Citus
    // accepts in an UPDATE of the column by itself (timestamptz's is not
    // IMMUTABLE).
    let mut sql = app.sql().await;
    let tx = crate::helpers::triggers_off(&mut sql).await;
    let moved = tx
        .execute(
            "UPDATE credit_ledger
                SET created_at = (created_at AT TIME ZONE 'UTC' - make_interval(days => $2)) AT TIME ZONE 'UTC'
              WHERE order_id = $1",
            &[&order_id, &days],
        )
        .await
        .expect("backdate");
    assert_eq!(moved, 1);
    tx.commit().await.expect("commit the backdating");
}

async fn buy(
    app: &TestApp,
    shop: &Business,
    customer: Uuid,
    product: Uuid,
    quantity: i64,
) -> Value {
    let reply = app.purchase(shop, customer, &[(product, quantity)]).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body
}

async fn pay(app: &TestApp, shop: &Business, customer: Uuid, amount: i64) {
    let reply = app
        .post(
            "/v1/payments",
            &shop.key,
            json!({ "customer_id": customer, "amount": amount }),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
}

async fn report(app: &TestApp, shop: &Business, days: &str) -> Value {
    let reply = app
        .get(&format!("/v1/reports/overdue?days={days}"), &shop.key)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

fn row(report: &Value, customer: Uuid) -> Option<&Value> {
    report["customers"]
        .as_array()
        .expect("customers array")
        .iter()
        .find(|row| row["customer_id"] == customer.to_string())
}

#[tokio::test]
async fn payments_settle_the_oldest_purchases_first() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 100, 1_000).await;

    let oldest = buy(&app, &shop, customer, product, 10).await; // 1,000
    let middle = buy(&app, &shop, customer, product, 20).await; // 2,000
    let _recent = buy(&app, &shop, customer, product, 5).await; // 500
    backdate(&app, &oldest, 100).await;
    backdate(&app, &middle, 45).await;
    // Pays the oldest in full and 500 of the middle one.
    pay(&app, &shop, customer, 1_500).await;

    let report = report(&app, &shop, "30").await;
    assert_eq!(report["days"], 30);
    assert!(report["as_of"].is_string());
    let row = row(&report, customer).expect("customer listed");
    assert_eq!(row["name"], "Customer");
    assert_eq!(row["balance"], 2_000);
    assert_eq!(row["overdue_amount"], 1_500);
    let ledger = app
        .get(&format!("/v1/customers/{customer}/ledger"), &shop.key)
        .await;
    let middle_entry = ledger.body["data"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|entry| entry["order_id"] == middle["id"])
        .expect("middle purchase in the ledger")
        .clone();
    assert_eq!(row["oldest_unpaid_at"], middle_entry["created_at"]);
    // 45 days old on 30-day terms: 15 days past due.
    assert_eq!(
        row["aging"],
        json!({ "current": 500, "1_30": 1_500, "31_60": 0, "61_90": 0, "over_90": 0 })
    );
}

#[tokio::test]
async fn returns_settle_like_payments_and_settled_customers_are_not_listed() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 250, 1_000).await;

    let returner = app.customer(&shop, 100_000).await;
    let order = buy(&app, &shop, returner, product, 4).await; // 1,000
    backdate(&app, &order, 50).await;
    let returned = app
        .post(
            &format!("/v1/orders/{}/returns", order["id"].as_str().expect("id")),
            &shop.key,
            json!({ "items": [{ "product_id": product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(returned.status, 201, "{returned:?}");

    let payer = app.customer(&shop, 100_000).await;
    let paid_off = buy(&app, &shop, payer, product, 2).await;
    backdate(&app, &paid_off, 90).await;
    pay(&app, &shop, payer, 500).await;

    let recent = app.customer(&shop, 100_000).await;
    buy(&app, &shop, recent, product, 1).await;

    let report = report(&app, &shop, "30").await;
    let row = row(&report, returner).expect("returner listed");
    assert_eq!(row["balance"], 750);
    assert_eq!(row["overdue_amount"], 750);
    assert_eq!(row["aging"]["1_30"], 750);
    assert!(self::row(&report, payer).is_none(), "fully paid: {report}");
    assert!(
        self::row(&report, recent).is_none(),
        "not yet due: {report}"
    );
}

#[tokio::test]
async fn buckets_sum_to_the_balance_and_rows_are_oldest_debt_first() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 1, 1_000_000).await;

    let late = app.customer(&shop, 1_000_000).await;
    for (quantity, age) in [(1, 200), (10, 95), (100, 75), (1_000, 40), (10_000, 10)] {
        let order = buy(&app, &shop, late, product, quantity).await;
        backdate(&app, &order, age).await;
    }
    let later = app.customer(&shop, 1_000_000).await;
    let order = buy(&app, &shop, later, product, 7).await;
    backdate(&app, &order, 31).await;

    let report = report(&app, &shop, "0").await;
    let customers = report["customers"].as_array().expect("array");
    let order_of_rows: Vec<&Value> = customers.iter().map(|row| &row["customer_id"]).collect();
    assert_eq!(
        order_of_rows,
        [&json!(late.to_string()), &json!(later.to_string())]
    );
    // days=0: everything is past due by its age.
    assert_eq!(
        customers[0]["aging"],
        json!({ "current": 0, "1_30": 10_000, "31_60": 1_000, "61_90": 100, "over_90": 11 })
    );
    assert_eq!(customers[0]["overdue_amount"], 11_111);
    assert_eq!(customers[0]["balance"], 11_111);

    let on_terms = self::report(&app, &shop, "30").await;
    let row = self::row(&on_terms, late).expect("listed");
    let aging = &row["aging"];
    let sum: i64 = ["current", "1_30", "31_60", "61_90", "over_90"]
        .iter()
        .map(|bucket| aging[*bucket].as_i64().expect("integer bucket"))
        .sum();
    assert_eq!(sum, 11_111);
    assert_eq!(aging["current"], 10_000);
    assert_eq!(row["overdue_amount"], 1_111);
    // 31 days old on 30-day terms: one day past due.
    assert!(self::row(&on_terms, later).is_some());
}

#[tokio::test]
async fn the_report_is_tenant_scoped_and_validates_days() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 10).await;
    let order = buy(&app, &shop, customer, product, 1).await;
    backdate(&app, &order, 40).await;

    assert_eq!(
        report(&app, &shop, "30").await["customers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let theirs = report(&app, &other, "30").await;
    assert_eq!(theirs["customers"], json!([]));

    let default = app.get("/v1/reports/overdue", &shop.key).await;
    assert_eq!(default.status, 200);
    // Without `days`, each purchase is aged by its own due date.
    assert_eq!(default.body["days"], serde_json::Value::Null);

    for bad in ["-1", "abc", "36501", "1.5"] {
        let reply = app
            .get(&format!("/v1/reports/overdue?days={bad}"), &shop.key)
            .await;
        assert_eq!(reply.status, 422, "days={bad}: {reply:?}");
        assert_eq!(reply.code(), "validation_failed");
        assert_eq!(reply.body["errors"][0]["field"], "days");
    }
    let anonymous = app
        .request(reqwest::Method::GET, "/v1/reports/overdue", None, &[], None)
        .await;
    assert_eq!(anonymous.status, 401);
}

/// The JSON of a report larger than one chunk of the body (64 KiB, about
/// 280 customers) is written a customer at a time and sent in pieces: it
/// still arrives whole, valid, and in report order.
#[tokio::test]
async fn a_report_sent_in_chunks_arrives_whole_and_oldest_debt_first() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 100, 1_000_000).await;
    let mut customers = Vec::new();
    for _ in 0..20 {
        let batch = (0..20).map(|_| app.customer(&shop, 100_000));
        customers.extend(futures::future::join_all(batch).await);
    }
    for batch in customers.chunks(20) {
        let buys = batch
            .iter()
            .map(|customer| buy(&app, &shop, *customer, product, 3));
        futures::future::join_all(buys).await;
    }
    // As `backdate` does it, for every purchase at once.
    let mut sql = app.sql().await;
    let tx = crate::helpers::triggers_off(&mut sql).await;
    tx.execute(
        "UPDATE credit_ledger
            SET created_at = (created_at AT TIME ZONE 'UTC' - interval '40 days') AT TIME ZONE 'UTC'
          WHERE business_id = $1 AND kind = 'purchase'",
        &[&shop.id],
    )
    .await
    .expect("backdate");
    tx.commit().await.expect("commit the backdating");

    let reply = app.get("/v1/reports/overdue?days=30", &shop.key).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers.get("transfer-encoding").map(|v| v.as_bytes()),
        Some(&b"chunked"[..]),
        "more than one chunk"
    );
    let rows = reply.body["customers"].as_array().expect("whole JSON");
    assert_eq!(rows.len(), customers.len());
    let key = |row: &Value| {
        let at = row["oldest_unpaid_at"].as_str().expect("time");
        let at = chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
        let id = Uuid::parse_str(row["customer_id"].as_str().expect("id")).expect("uuid");
        (at, id)
    };
    let keys: Vec<_> = rows.iter().map(key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "oldest debt first");
    assert!(rows.iter().all(|row| row["overdue_amount"] == 300));
}
