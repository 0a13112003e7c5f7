//! Holds: authorize now, capture later (the contract's "Holds" section).
//! A pending hold counts against stock and the credit limit at once, a
//! capture is an ordinary order at the hold's prices, a void or the expiry
//! releases everything, and PostgreSQL's clock decides expiry, whether or
//! not anything has recorded it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::helpers::{Business, Reply, TestApp, refused};

fn items(lines: &[(Uuid, i64)]) -> Value {
    lines
        .iter()
        .map(|(product, quantity)| json!({ "product_id": product, "quantity": quantity }))
        .collect()
}

async fn hold(
    app: &TestApp,
    business: &Business,
    customer: Uuid,
    lines: &[(Uuid, i64)],
    expires_in: Option<i64>,
) -> Reply {
    let mut body = json!({ "customer_id": customer, "items": items(lines) });
    if let Some(seconds) = expires_in {
        body["expires_in"] = json!(seconds);
    }
    app.post("/v1/holds", &business.key, body).await
}

/// A pending hold, asserted created.
async fn held(
    app: &TestApp,
    business: &Business,
    customer: Uuid,
    lines: &[(Uuid, i64)],
    expires_in: Option<i64>,
) -> Value {
    let reply = hold(app, business, customer, lines, expires_in).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.body["status"], "pending", "{reply:?}");
    reply.body
}

async fn capture(
    app: &TestApp,
    business: &Business,
    hold_id: &Value,
    lines: Option<&[(Uuid, i64)]>,
) -> Reply {
    let body = match lines {
        Some(lines) => json!({ "items": items(lines) }),
        None => json!({}),
    };
    app.post(
        &format!("/v1/holds/{}/capture", id(hold_id)),
        &business.key,
        body,
    )
    .await
}

async fn void(app: &TestApp, business: &Business, hold_id: &Value) -> Reply {
    app.post(
        &format!("/v1/holds/{}/void", id(hold_id)),
        &business.key,
        json!({}),
    )
    .await
}

fn id(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not an id: {value}"))
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(id(value))
        .unwrap_or_else(|error| panic!("{value} is not RFC 3339: {error}"))
        .with_timezone(&Utc)
}

fn keys_of(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// (stock, reserved, available) as the API shows the product.
async fn stock_of(app: &TestApp, business: &Business, product: Uuid) -> (i64, i64, i64) {
    let reply = app
        .get(&format!("/v1/products/{product}"), &business.key)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = &reply.body;
    (
        int(&body["stock"]),
        int(&body["reserved"]),
        int(&body["available"]),
    )
}

/// (balance, held, available_credit) as the API shows the customer.
async fn credit_of(app: &TestApp, business: &Business, customer: Uuid) -> (i64, i64, i64) {
    let reply = app
        .get(&format!("/v1/customers/{customer}"), &business.key)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = &reply.body;
    (
        int(&body["balance"]),
        int(&body["held"]),
        int(&body["available_credit"]),
    )
}

async fn get_hold(app: &TestApp, business: &Business, hold: &Value) -> Value {
    let reply = app
        .get(&format!("/v1/holds/{}", id(&hold["id"])), &business.key)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

/// Waits (up to 10 s) until PostgreSQL's clock has passed the hold's
/// expiry: the hold then reads as expired.
async fn wait_until_expired(app: &TestApp, business: &Business, hold: &Value) {
    for _ in 0..500 {
        if get_hold(app, business, hold).await["status"] == "expired" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("hold {} never expired", hold["id"]);
}

fn assert_refused(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.code(), code, "{reply:?}");
}

// ------------------------------------------------------------------ basics

#[tokio::test]
async fn a_hold_reserves_stock_and_credit_until_captured_at_its_prices() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let other = app.customer(&shop, 10_000).await;
    let tea = app.product(&shop, 100, 10).await;

    let hold = held(&app, &shop, customer, &[(tea, 3)], None).await;
    assert_eq!(
        keys_of(&hold),
        [
            "created_at",
            "customer_id",
            "ended_at",
            "expires_at",
            "id",
            "items",
            "order_id",
            "status",
            "total"
        ]
    );
    assert_eq!(hold["customer_id"], customer.to_string());
    assert_eq!(hold["total"], 300);
    assert_eq!(
        hold["items"],
        json!([{ "product_id": tea, "quantity": 3, "unit_price": 100, "line_total": 300 }])
    );
    assert_eq!(hold["ended_at"], Value::Null);
    assert_eq!(hold["order_id"], Value::Null);
    assert_eq!(
        time(&hold["expires_at"]) - time(&hold["created_at"]),
        chrono::Duration::seconds(900),
        "expires_in defaults to 900 seconds"
    );

    // Reserved at once: other purchases and holds see only what is left.
    assert_eq!(stock_of(&app, &shop, tea).await, (10, 3, 7));
    assert_eq!(credit_of(&app, &shop, customer).await, (0, 300, 700));
    let too_many = app.purchase(&shop, other, &[(tea, 8)]).await;
    assert_refused(&too_many, 409, "insufficient_stock");
    assert_eq!(too_many.body["available"], 7);
    assert_eq!(too_many.body["requested"], 8);
    let another = hold_refused(&app, &shop, other, &[(tea, 8)]).await;
    assert_eq!(another.body["available"], 7);
    // The held credit counts against the limit, and the refusal says so.
    let cake = app.product(&shop, 701, 1).await;
    let over = app.purchase(&shop, customer, &[(cake, 1)]).await;
    assert_refused(&over, 409, "credit_limit_exceeded");
    assert_eq!(over.body["credit_limit"], 1_000);
    assert_eq!(over.body["balance"], 0);
    assert_eq!(over.body["held"], 300);
    assert_eq!(over.body["order_total"], 701);

    // A price change since does not reach the hold.
    let repriced = app
        .patch(
            &format!("/v1/products/{tea}"),
            &shop.key,
            json!({ "price": 250 }),
        )
        .await;
    assert_eq!(repriced.status, 200, "{repriced:?}");

    let order = capture(&app, &shop, &hold["id"], None).await;
    assert_eq!(order.status, 201, "{order:?}");
    assert_eq!(order.body["hold_id"], hold["id"]);
    assert_eq!(order.body["customer_id"], customer.to_string());
    assert_eq!(order.body["total"], 300);
    assert_eq!(
        order.body["items"],
        json!([{ "product_id": tea, "quantity": 3, "unit_price": 100, "line_total": 300 }])
    );
    assert_eq!(
        time(&order.body["due_at"]) - time(&order.body["created_at"]),
        chrono::Duration::days(30),
        "a capture falls due as a purchase made then"
    );
    let order_id = order.id();

    // Sold: stock down, nothing reserved, the credit now owed.
    assert_eq!(stock_of(&app, &shop, tea).await, (7, 0, 7));
    assert_eq!(credit_of(&app, &shop, customer).await, (300, 0, 700));
    let captured = get_hold(&app, &shop, &hold).await;
    assert_eq!(captured["status"], "captured");
    assert_eq!(captured["order_id"], order_id.to_string());
    assert!(time(&captured["ended_at"]) < time(&captured["expires_at"]));
    let read = app.get(&format!("/v1/orders/{order_id}"), &shop.key).await;
    assert_eq!(read.body["hold_id"], hold["id"]);
    let ledger = app
        .get(&format!("/v1/customers/{customer}/ledger"), &shop.key)
        .await;
    assert_eq!(ledger.body["data"][0]["kind"], "purchase");
    assert_eq!(ledger.body["data"][0]["amount"], 300);
    assert_eq!(ledger.body["data"][0]["order_id"], order_id.to_string());

    // Once only.
    let again = capture(&app, &shop, &hold["id"], None).await;
    assert_refused(&again, 409, "hold_not_pending");
    assert_eq!(again.body["hold_status"], "captured");
    let voided = void(&app, &shop, &hold["id"]).await;
    assert_refused(&voided, 409, "hold_not_pending");
    assert_eq!(voided.body["hold_status"], "captured");

    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, &[], None)
        .await;
    let text = metrics.body.as_str().unwrap_or_default();
    assert!(
        text.contains("ontab_holds_total{action=\"capture\",outcome=\"captured\"}"),
        "holds are counted by outcome: {text}"
    );
    app.assert_audit_clean().await;
}

async fn hold_refused(
    app: &TestApp,
    business: &Business,
    customer: Uuid,
    lines: &[(Uuid, i64)],
) -> Reply {
    let reply = hold(app, business, customer, lines, None).await;
    assert_refused(&reply, 409, "insufficient_stock");
    reply
}

#[tokio::test]
async fn a_capture_may_be_partial_and_releases_the_rest() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let tea = app.product(&shop, 100, 10).await;
    let cup = app.product(&shop, 50, 4).await;
    let jam = app.product(&shop, 10, 4).await;

    let hold = held(&app, &shop, customer, &[(tea, 3), (cup, 2)], Some(60)).await;
    assert_eq!(hold["total"], 400);
    assert_eq!(credit_of(&app, &shop, customer).await, (0, 400, 9_600));

    // More than held, a product not held (known or not): capture_exceeds_hold.
    let beyond = capture(&app, &shop, &hold["id"], Some(&[(tea, 4)])).await;
    assert_refused(&beyond, 409, "capture_exceeds_hold");
    assert_eq!(beyond.body["product_id"], tea.to_string());
    assert_eq!(beyond.body["held"], 3);
    let not_held = capture(&app, &shop, &hold["id"], Some(&[(tea, 1), (jam, 1)])).await;
    assert_refused(&not_held, 409, "capture_exceeds_hold");
    assert_eq!(not_held.body["product_id"], jam.to_string());
    assert_eq!(not_held.body["held"], 0);
    let unknown = Uuid::new_v4();
    let nowhere = capture(&app, &shop, &hold["id"], Some(&[(unknown, 1)])).await;
    assert_refused(&nowhere, 409, "capture_exceeds_hold");
    assert_eq!(nowhere.body["held"], 0);
    // Lines are validated as a purchase's.
    let empty = app
        .post(
            &format!("/v1/holds/{}/capture", id(&hold["id"])),
            &shop.key,
            json!({ "items": [] }),
        )
        .await;
    assert_refused(&empty, 422, "validation_failed");
    let zero = capture(&app, &shop, &hold["id"], Some(&[(tea, 0)])).await;
    assert_refused(&zero, 422, "validation_failed");
    // Nothing refused changed the hold.
    assert_eq!(stock_of(&app, &shop, tea).await, (10, 3, 7));

    // The same product on two lines counts as their sum.
    let order = capture(&app, &shop, &hold["id"], Some(&[(tea, 1), (tea, 1)])).await;
    assert_eq!(order.status, 201, "{order:?}");
    assert_eq!(order.body["total"], 200);
    assert_eq!(
        order.body["items"],
        json!([{ "product_id": tea, "quantity": 2, "unit_price": 100, "line_total": 200 }])
    );
    // The rest (one tea, both cups) is released.
    assert_eq!(stock_of(&app, &shop, tea).await, (8, 0, 8));
    assert_eq!(stock_of(&app, &shop, cup).await, (4, 0, 4));
    assert_eq!(credit_of(&app, &shop, customer).await, (200, 0, 9_800));
    let captured = get_hold(&app, &shop, &hold).await;
    assert_eq!(captured["status"], "captured");
    assert_eq!(
        captured["items"], hold["items"],
        "a hold's lines never change"
    );
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn a_void_releases_everything_and_a_hold_ends_once() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let tea = app.product(&shop, 100, 10).await;

    let hold = held(&app, &shop, customer, &[(tea, 5)], None).await;
    // No body at all is a void too.
    let voided = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/holds/{}/void", id(&hold["id"])),
            Some(&shop.key),
            &[],
            None,
        )
        .await;
    assert_eq!(voided.status, 200, "{voided:?}");
    assert_eq!(voided.body["status"], "voided");
    assert_eq!(voided.body["order_id"], Value::Null);
    assert!(voided.body["ended_at"].is_string(), "{voided:?}");
    assert_eq!(stock_of(&app, &shop, tea).await, (10, 0, 10));
    assert_eq!(credit_of(&app, &shop, customer).await, (0, 0, 1_000));

    let twice = void(&app, &shop, &hold["id"]).await;
    assert_refused(&twice, 409, "hold_not_pending");
    assert_eq!(twice.body["hold_status"], "voided");
    let late = capture(&app, &shop, &hold["id"], None).await;
    assert_refused(&late, 409, "hold_not_pending");
    assert_eq!(late.body["hold_status"], "voided");
    // A void takes no fields.
    let other = held(&app, &shop, customer, &[(tea, 1)], None).await;
    let odd = app
        .post(
            &format!("/v1/holds/{}/void", id(&other["id"])),
            &shop.key,
            json!({ "reason": "why" }),
        )
        .await;
    assert_refused(&odd, 400, "malformed_request");
    app.assert_audit_clean().await;
}

// -------------------------------------------------------------- refusals

#[tokio::test]
async fn holds_refuse_as_purchases_do_in_the_contract_order() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let tea = app.product(&shop, 100, 5).await;
    let unknown = Uuid::new_v4();

    // Body and values.
    for (body, status, code) in [
        (json!({ "customer_id": customer }), 400, "malformed_request"),
        (
            json!({ "customer_id": customer, "items": items(&[(tea, 1)]), "extra": 1 }),
            400,
            "malformed_request",
        ),
        (
            json!({ "customer_id": customer, "items": items(&[(tea, 1)]), "expires_in": "soon" }),
            400,
            "malformed_request",
        ),
        (
            json!({ "customer_id": customer, "items": [] }),
            422,
            "validation_failed",
        ),
        (
            json!({ "customer_id": customer, "items": items(&[(tea, 1)]), "expires_in": 0 }),
            422,
            "validation_failed",
        ),
        (
            json!({ "customer_id": customer, "items": items(&[(tea, 1)]), "expires_in": 2_592_001 }),
            422,
            "validation_failed",
        ),
        (
            json!({ "customer_id": customer, "items": items(&[(tea, 1)]), "expires_in": 9_007_199_254_740_993_i64 }),
            422,
            "validation_failed",
        ),
    ] {
        let reply = app.post("/v1/holds", &shop.key, body.clone()).await;
        assert_refused(&reply, status, code);
        if code == "validation_failed" && body.get("expires_in").is_some() {
            assert_eq!(reply.body["errors"][0]["field"], "expires_in", "{reply:?}");
        }
    }
    let longest = hold(&app, &shop, customer, &[(tea, 1)], Some(2_592_000)).await;
    assert_eq!(longest.status, 201, "{longest:?}");
    assert_eq!(
        time(&longest.body["expires_at"]) - time(&longest.body["created_at"]),
        chrono::Duration::days(30)
    );
    let released = void(&app, &shop, &longest.body["id"]).await;
    assert_eq!(released.status, 200);

    // not_found before the account, the account before stock, stock before
    // credit.
    let reply = hold(&app, &shop, unknown, &[(unknown, 99)], None).await;
    assert_refused(&reply, 404, "not_found");
    let reply = hold(&app, &shop, customer, &[(tea, 99), (unknown, 1)], None).await;
    assert_refused(&reply, 404, "not_found");
    let paused = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &shop.key,
            json!({ "status": "on_hold" }),
        )
        .await;
    assert_eq!(paused.status, 200);
    let reply = hold(&app, &shop, customer, &[(tea, 99)], None).await;
    assert_refused(&reply, 409, "customer_on_hold");
    assert_eq!(reply.body["customer_id"], customer.to_string());
    let resumed = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &shop.key,
            json!({ "status": "active" }),
        )
        .await;
    assert_eq!(resumed.status, 200);
    let reply = hold(&app, &shop, customer, &[(tea, 6)], None).await;
    assert_refused(&reply, 409, "insufficient_stock");
    assert_eq!(reply.body["available"], 5);
    let pricey = app.product(&shop, 600, 5).await;
    let reply = hold(&app, &shop, customer, &[(pricey, 2)], None).await;
    assert_refused(&reply, 409, "credit_limit_exceeded");
    assert_eq!(reply.body["order_total"], 1_200);
    assert_eq!(reply.body["held"], 0);

    let closed_customer = app.customer(&shop, 1_000).await;
    let closed = app
        .patch(
            &format!("/v1/customers/{closed_customer}"),
            &shop.key,
            json!({ "status": "closed" }),
        )
        .await;
    assert_eq!(closed.status, 200);
    let reply = hold(&app, &shop, closed_customer, &[(tea, 99)], None).await;
    assert_refused(&reply, 409, "customer_closed");

    // Nothing refused reserved anything.
    assert_eq!(stock_of(&app, &shop, tea).await, (5, 0, 5));
    assert_eq!(credit_of(&app, &shop, customer).await, (0, 0, 1_000));
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn captures_and_voids_refuse_in_the_contract_order() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let tea = app.product(&shop, 100, 10).await;

    for path in ["capture", "void"] {
        let unknown = app
            .post(
                &format!("/v1/holds/{}/{path}", Uuid::new_v4()),
                &shop.key,
                json!({}),
            )
            .await;
        assert_refused(&unknown, 404, "not_found");
        let not_an_id = app
            .post(
                &format!("/v1/holds/not-a-uuid/{path}"),
                &shop.key,
                json!({}),
            )
            .await;
        assert_refused(&not_an_id, 404, "not_found");
    }

    // On hold: no capture (it would be a purchase), but a void gives back.
    let first = held(&app, &shop, customer, &[(tea, 2)], None).await;
    let second = held(&app, &shop, customer, &[(tea, 2)], None).await;
    let paused = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &shop.key,
            json!({ "status": "on_hold" }),
        )
        .await;
    assert_eq!(paused.status, 200);
    // customer_on_hold comes before capture_exceeds_hold ...
    let reply = capture(&app, &shop, &first["id"], Some(&[(tea, 9)])).await;
    assert_refused(&reply, 409, "customer_on_hold");
    let voided = void(&app, &shop, &first["id"]).await;
    assert_eq!(voided.status, 200, "{voided:?}");
    // ... and before hold_not_pending.
    let reply = capture(&app, &shop, &first["id"], None).await;
    assert_refused(&reply, 409, "customer_on_hold");
    let resumed = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &shop.key,
            json!({ "status": "active" }),
        )
        .await;
    assert_eq!(resumed.status, 200);
    // hold_not_pending before capture_exceeds_hold.
    let reply = capture(&app, &shop, &first["id"], Some(&[(tea, 9)])).await;
    assert_refused(&reply, 409, "hold_not_pending");
    assert_eq!(reply.body["hold_status"], "voided");

    // Closing a customer voids its pending holds; after it, its holds
    // answer customer_closed.
    let closing = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &shop.key,
            json!({ "status": "closed" }),
        )
        .await;
    assert_eq!(closing.status, 200, "{closing:?}");
    assert_eq!(get_hold(&app, &shop, &second).await["status"], "voided");
    assert_eq!(stock_of(&app, &shop, tea).await, (10, 0, 10));
    let reply = capture(&app, &shop, &second["id"], None).await;
    assert_refused(&reply, 409, "customer_closed");
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn stock_adjustments_keep_what_pending_holds_reserve() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let tea = app.product(&shop, 100, 10).await;
    let _hold = held(&app, &shop, customer, &[(tea, 7)], None).await;

    let path = format!("/v1/products/{tea}/stock-adjustments");
    let adjust = |delta: i64| {
        app.post(
            &path,
            &shop.key,
            json!({ "delta": delta, "reason": "count" }),
        )
    };
    let reply = adjust(-4).await;
    assert_refused(&reply, 409, "insufficient_stock");
    assert_eq!(reply.body["requested"], 4);
    assert_eq!(reply.body["available"], 3);
    let reply = adjust(-3).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.body["product"]["stock"], 7);
    assert_eq!(reply.body["product"]["reserved"], 7);
    assert_eq!(reply.body["product"]["available"], 0);
    app.assert_audit_clean().await;
}

// ---------------------------------------------------------------- expiry

#[tokio::test]
async fn an_expired_hold_blocks_nothing_before_any_background_work() {
    // No sweep on this server: whatever happens below is decided by the
    // deciding transactions' own clock.
    let app = TestApp::spawn_without_hold_sweep().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let tea = app.product(&shop, 100, 10).await;

    let hold = held(&app, &shop, customer, &[(tea, 10)], Some(1)).await;
    assert_eq!(stock_of(&app, &shop, tea).await, (10, 10, 0));
    assert_eq!(credit_of(&app, &shop, customer).await, (0, 1_000, 0));
    wait_until_expired(&app, &shop, &hold).await;

    // Reads count it out at once ...
    assert_eq!(stock_of(&app, &shop, tea).await, (10, 0, 10));
    assert_eq!(credit_of(&app, &shop, customer).await, (0, 0, 1_000));
    let expired = get_hold(&app, &shop, &hold).await;
    assert_eq!(expired["ended_at"], expired["expires_at"]);
    let listed = app
        .get(
            &format!("/v1/holds?status=expired&customer_id={customer}"),
            &shop.key,
        )
        .await;
    assert_eq!(listed.body["data"][0]["id"], hold["id"]);
    // ... it can be neither captured nor voided ...
    let late = capture(&app, &shop, &hold["id"], None).await;
    assert_refused(&late, 409, "hold_not_pending");
    assert_eq!(late.body["hold_status"], "expired");
    let late = void(&app, &shop, &hold["id"]).await;
    assert_refused(&late, 409, "hold_not_pending");
    assert_eq!(late.body["hold_status"], "expired");
    // ... and the same customer buys all the stock with all its credit.
    let bought = app.purchase(&shop, customer, &[(tea, 10)]).await;
    assert_eq!(bought.status, 201, "{bought:?}");
    assert_eq!(stock_of(&app, &shop, tea).await, (0, 0, 0));
    assert_eq!(credit_of(&app, &shop, customer).await, (1_000, 0, 0));

    // Nothing recorded its expiry, and nothing needed to.
    let sql = app.sql().await;
    let endings: i64 = sql
        .query_one("SELECT count(*) FROM hold_endings", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(endings, 0);
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn the_sweep_records_expiries_with_no_request() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let tea = app.product(&shop, 100, 10).await;
    let hold = held(&app, &shop, customer, &[(tea, 4)], Some(1)).await;

    // The sweep runs every second: the expiry is recorded, and the rows
    // it reserved with, within a few seconds of it, with no request.
    let sql = app.sql().await;
    let mut recorded = None;
    for _ in 0..500 {
        let row = sql
            .query_opt(
                "SELECT e.outcome, p.reserved, c.held
                   FROM hold_endings e, products p, customers c
                  WHERE e.business_id = $4 AND e.hold_id = $1
                    AND p.business_id = $4 AND p.id = $2
                    AND c.business_id = $4 AND c.id = $3",
                &[
                    &Uuid::parse_str(id(&hold["id"])).expect("uuid"),
                    &tea,
                    &customer,
                    &shop.id,
                ],
            )
            .await
            .expect("query");
        if let Some(row) = row {
            recorded = Some((
                row.get::<_, String>(0),
                row.get::<_, i64>(1),
                row.get::<_, i64>(2),
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(recorded, Some(("expired".to_owned(), 0, 0)));
    let pending: i64 = sql
        .query_one(
            "SELECT (SELECT count(*) FROM pending_holds) + (SELECT count(*) FROM pending_hold_items)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(pending, 0);
    assert_eq!(get_hold(&app, &shop, &hold).await["status"], "expired");
    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, &[], None)
        .await;
    let text = metrics.body.as_str().unwrap_or_default();
    assert!(text.contains("ontab_hold_expiries_total"), "{text}");
    assert!(text.contains("ontab_hold_expiry_lag_seconds"), "{text}");
    app.assert_audit_clean().await;
}

/// A superuser session acting as the server does: `ontab_app` for `tenant`.
async fn as_app(app: &TestApp, tenant: Uuid) -> Client {
    let client = app.sql().await;
    client
        .batch_execute("SET ROLE ontab_app")
        .await
        .expect("become ontab_app");
    client
        .execute(
            "SELECT set_config('ontab.business_id', $1, false)",
            &[&tenant.to_string()],
        )
        .await
        .expect("set the tenant");
    client
}

/// `now()` is each transaction's start: a transaction that began before a
/// hold expired still sees it pending. If one that began after has already
/// treated the hold as released (sold its stock, or lent its credit), the
/// earlier one must not capture it.
#[tokio::test]
async fn a_decision_that_began_before_an_expiry_cannot_take_what_a_later_one_released() {
    let app = TestApp::spawn_without_hold_sweep().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let tea = app.product(&shop, 100, 10).await;
    let jam = app.product(&shop, 100, 10).await;

    // Stock: a later purchase takes the expired hold's units.
    let stock_hold = held(&app, &shop, customer, &[(tea, 10)], Some(2)).await;
    let early = as_app(&app, shop.id).await;
    crate::helpers::begin_as_session_tenant(&early).await;
    early
        .query_one("SELECT now()", &[])
        .await
        .expect("clock fixed");
    wait_until_expired(&app, &shop, &stock_hold).await;
    let other = app.customer(&shop, 5_000).await;
    let bought = app.purchase(&shop, other, &[(tea, 10)]).await;
    assert_eq!(bought.status, 201, "{bought:?}");
    let answer: Value = early
        .query_one(
            "SELECT ontab_capture($1, gen_random_uuid(), gen_random_uuid(), NULL, NULL)",
            &[&Uuid::parse_str(id(&stock_hold["id"])).expect("uuid")],
        )
        .await
        .expect("capture answers")
        .get(0);
    assert_eq!(
        answer,
        json!({ "error": "hold_not_pending", "status": "expired" })
    );
    early.batch_execute("COMMIT").await.expect("commit");

    // Credit: a later purchase of another product spends the expired
    // hold's credit.
    let credit_hold = held(&app, &shop, customer, &[(jam, 10)], Some(2)).await;
    crate::helpers::begin_as_session_tenant(&early).await;
    early
        .query_one("SELECT now()", &[])
        .await
        .expect("clock fixed");
    wait_until_expired(&app, &shop, &credit_hold).await;
    let bought = app.purchase(&shop, customer, &[(jam, 1)]).await;
    assert_eq!(bought.status, 201, "{bought:?}");
    let spend = app
        .post(
            "/v1/products",
            &shop.key,
            json!({ "name": "Gift", "price": 900, "stock": 1 }),
        )
        .await;
    let gift = spend.id();
    let bought = app.purchase(&shop, customer, &[(gift, 1)]).await;
    assert_eq!(
        bought.status, 201,
        "the expired hold's credit is free: {bought:?}"
    );
    let answer: Value = early
        .query_one(
            "SELECT ontab_capture($1, gen_random_uuid(), gen_random_uuid(), NULL, NULL)",
            &[&Uuid::parse_str(id(&credit_hold["id"])).expect("uuid")],
        )
        .await
        .expect("capture answers")
        .get(0);
    assert_eq!(
        answer,
        json!({ "error": "hold_not_pending", "status": "expired" })
    );
    early.batch_execute("COMMIT").await.expect("commit");

    assert_eq!(credit_of(&app, &shop, customer).await, (1_000, 0, 0));
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn decisions_racing_the_expiry_instant_never_oversell() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let holder = app.customer(&shop, 100_000).await;
    let buyers: Vec<Uuid> = {
        let mut buyers = Vec::new();
        for _ in 0..4 {
            buyers.push(app.customer(&shop, 100_000).await);
        }
        buyers
    };
    let tea = app.product(&shop, 100, 10).await;
    let hold = held(&app, &shop, holder, &[(tea, 10)], Some(1)).await;
    let expires_at = time(&hold["expires_at"]);

    // Captures and purchases of all ten units, fired from just before the
    // expiry to just after it.
    let mut tasks = Vec::new();
    for round in 0..40_u64 {
        let app = &app;
        let shop = &shop;
        let hold = &hold;
        let buyer = buyers[(round % 4) as usize];
        tasks.push(async move {
            tokio::time::sleep(Duration::from_millis(700 + round * 15)).await;
            if round % 2 == 0 {
                let reply = capture(app, shop, &hold["id"], None).await;
                (reply.status == 201).then_some(("capture", reply.body))
            } else {
                let reply = app.purchase(shop, buyer, &[(tea, 10)]).await;
                (reply.status == 201).then_some(("purchase", reply.body))
            }
        });
    }
    let sold: Vec<(&str, Value)> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(sold.len(), 1, "ten units sell once: {sold:?}");
    if let ("capture", order) = &sold[0] {
        assert!(
            time(&order["created_at"]) < expires_at,
            "{order} captured after {expires_at}"
        );
    }
    assert_eq!(stock_of(&app, &shop, tea).await, (0, 0, 0));
    app.assert_audit_clean().await;
}

// ---------------------------------------------------------- concurrency

#[tokio::test]
async fn thirty_two_clients_mixing_holds_captures_voids_and_purchases_hold_every_invariant() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let mut customers = Vec::new();
    for _ in 0..4 {
        customers.push(app.customer(&shop, 3_000).await);
    }
    let tea = app.product(&shop, 7, 150).await;

    let clients = (0..32_u64).map(|client| {
        let app = &app;
        let shop = &shop;
        let customers = &customers;
        async move {
            // A small deterministic generator per client (xorshift).
            let mut state = client.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move |bound: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % bound
            };
            let mut mine: Vec<Value> = Vec::new();
            let mut outcomes = Vec::new();
            for _ in 0..12 {
                let customer = customers[next(4) as usize];
                let quantity = 1 + next(3) as i64;
                let reply = match next(6) {
                    0 | 1 => app.purchase(shop, customer, &[(tea, quantity)]).await,
                    2 => hold(app, shop, customer, &[(tea, quantity)], Some(900)).await,
                    3 => hold(app, shop, customer, &[(tea, quantity)], Some(1)).await,
                    4 => match mine.pop() {
                        Some(id) if next(2) == 0 => capture(app, shop, &id, None).await,
                        Some(id) => capture(app, shop, &id, Some(&[(tea, 1)])).await,
                        None => continue,
                    },
                    _ => match mine.pop() {
                        Some(id) => void(app, shop, &id).await,
                        None => continue,
                    },
                };
                if reply.status == 201 && reply.body["status"] == "pending" {
                    mine.push(reply.body["id"].clone());
                }
                assert!(
                    [200, 201, 409].contains(&reply.status),
                    "only answers and refusals: {reply:?}"
                );
                if reply.status == 409 {
                    let code = reply.code().to_owned();
                    assert!(
                        [
                            "insufficient_stock",
                            "credit_limit_exceeded",
                            "hold_not_pending"
                        ]
                        .contains(&code.as_str()),
                        "{reply:?}"
                    );
                }
                outcomes.push(reply.status);
            }
            outcomes
        }
    });
    let outcomes: Vec<u16> = futures::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(outcomes.contains(&201), "some succeeded");

    // No oversell, reserved exact, nobody above the limit counting holds.
    // The live holds are summed first: holds only expire from here on, so
    // what the API then reports reserved can only be fewer (read the other
    // way round, a hold expiring between the two reads failed this).
    let sql = app.sql().await;
    let live: i64 = sql
        .query_one(
            "SELECT coalesce(sum(quantity), 0)::bigint FROM pending_hold_items WHERE expires_at > now()",
            &[],
        )
        .await
        .expect("sum")
        .get(0);
    let (stock, reserved, available) = stock_of(&app, &shop, tea).await;
    assert!(stock >= 0 && reserved <= stock && available == stock - reserved);
    assert!(
        reserved <= live,
        "reserved {reserved} counts no expired hold ({live} live)"
    );
    for customer in &customers {
        let (balance, held, _) = credit_of(&app, &shop, *customer).await;
        assert!(
            balance + held <= 3_000,
            "customer {customer}: {balance} + {held}"
        );
    }
    app.assert_audit_clean().await;
}

// ----------------------------------------------------- lists, isolation

#[tokio::test]
async fn holds_are_listed_newest_first_by_customer_and_status() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let ada = app.customer(&shop, 10_000).await;
    let bob = app.customer(&shop, 10_000).await;
    let tea = app.product(&shop, 10, 100).await;

    let captured = held(&app, &shop, ada, &[(tea, 1)], None).await;
    assert_eq!(
        capture(&app, &shop, &captured["id"], None).await.status,
        201
    );
    let voided = held(&app, &shop, ada, &[(tea, 1)], None).await;
    assert_eq!(void(&app, &shop, &voided["id"]).await.status, 200);
    let pending = held(&app, &shop, ada, &[(tea, 1)], None).await;
    let bobs = held(&app, &shop, bob, &[(tea, 1)], None).await;

    let ids = |reply: &Reply| -> Vec<Value> {
        reply.body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("a list: {reply:?}"))
            .iter()
            .map(|hold| hold["id"].clone())
            .collect()
    };
    let all = app.get("/v1/holds", &shop.key).await;
    assert_eq!(
        ids(&all),
        [&bobs, &pending, &voided, &captured].map(|hold| hold["id"].clone())
    );
    assert_eq!(all.body["next_cursor"], Value::Null);
    let adas = app
        .get(&format!("/v1/holds?customer_id={ada}"), &shop.key)
        .await;
    assert_eq!(ids(&adas).len(), 3);
    for (status, expected) in [
        ("pending", vec![&bobs, &pending]),
        ("captured", vec![&captured]),
        ("voided", vec![&voided]),
        ("expired", vec![]),
    ] {
        let listed = app
            .get(&format!("/v1/holds?status={status}"), &shop.key)
            .await;
        assert_eq!(
            ids(&listed),
            expected
                .iter()
                .map(|hold| hold["id"].clone())
                .collect::<Vec<_>>(),
            "{status}"
        );
    }
    let both = app
        .get(
            &format!("/v1/holds?status=pending&customer_id={ada}"),
            &shop.key,
        )
        .await;
    assert_eq!(ids(&both), [pending["id"].clone()]);

    // Pages of one.
    let mut seen = Vec::new();
    let mut path = "/v1/holds?limit=1".to_owned();
    loop {
        let page = app.get(&path, &shop.key).await;
        seen.extend(ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/holds?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));

    for bad in ["status=frozen", "customer_id=nope", "limit=0", "cursor=zz"] {
        let reply = app.get(&format!("/v1/holds?{bad}"), &shop.key).await;
        assert_refused(&reply, 422, "validation_failed");
    }
}

#[tokio::test]
async fn another_businesss_holds_answer_as_unknown_ones() {
    let app = TestApp::spawn().await;
    let a = app.business("A").await;
    let b = app.business("B").await;
    let a_customer = app.customer(&a, 10_000).await;
    let a_tea = app.product(&a, 10, 100).await;
    let b_customer = app.customer(&b, 10_000).await;
    let b_tea = app.product(&b, 10, 100).await;
    let a_hold = held(&app, &a, a_customer, &[(a_tea, 2)], None).await;
    let a_id = id(&a_hold["id"]).to_owned();
    let unknown = Uuid::new_v4().to_string();

    // Every route, with A's hold id and with an id nobody has: the same
    // answer but for the id itself.
    let same = |theirs: &Reply, nobodys: &Reply| {
        assert_eq!(theirs.status, nobodys.status, "{theirs:?} / {nobodys:?}");
        let scrub = |reply: &Reply, id: &str| reply.body.to_string().replace(id, "<id>");
        assert_eq!(scrub(theirs, &a_id), scrub(nobodys, &unknown));
    };
    for (method, suffix) in [
        (reqwest::Method::GET, ""),
        (reqwest::Method::POST, "/capture"),
        (reqwest::Method::POST, "/void"),
    ] {
        let send = |hold: &str| {
            let body = (method == reqwest::Method::POST).then(|| json!({}));
            let path = format!("/v1/holds/{hold}{suffix}");
            let method = method.clone();
            let app = &app;
            let key = b.key.clone();
            async move {
                app.request(method, &path, Some(&key), &[], body.as_ref())
                    .await
            }
        };
        let theirs = send(&a_id).await;
        assert_refused(&theirs, 404, "not_found");
        same(&theirs, &send(&unknown).await);
    }
    let listed = app.get("/v1/holds", &b.key).await;
    assert_eq!(listed.body["data"], json!([]));
    let listed = app
        .get(&format!("/v1/holds?customer_id={a_customer}"), &b.key)
        .await;
    assert_eq!(listed.body["data"], json!([]));

    // A's customer or product in B's hold: not found, as unknown ones.
    let reply = hold(&app, &b, a_customer, &[(b_tea, 1)], None).await;
    assert_refused(&reply, 404, "not_found");
    let reply = hold(&app, &b, b_customer, &[(a_tea, 1)], None).await;
    assert_refused(&reply, 404, "not_found");
    // B's product in a capture of A's hold: not held, as an unknown one.
    let reply = capture(&app, &a, &a_hold["id"], Some(&[(b_tea, 1)])).await;
    assert_refused(&reply, 409, "capture_exceeds_hold");
    assert_eq!(reply.body["held"], 0);

    // Nothing of A moved.
    assert_eq!(get_hold(&app, &a, &a_hold).await["status"], "pending");
    assert_eq!(stock_of(&app, &a, a_tea).await, (100, 2, 98));
    assert_eq!(stock_of(&app, &b, b_tea).await, (100, 0, 100));
}

// ------------------------------------------------------------ idempotency

#[tokio::test]
async fn hold_posts_run_once_per_idempotency_key() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let tea = app.product(&shop, 10, 100).await;
    let body = json!({ "customer_id": customer, "items": items(&[(tea, 3)]) });

    let first = app
        .post_once("/v1/holds", &shop.key, "hold-1", body.clone())
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let again = app
        .post_once("/v1/holds", &shop.key, "hold-1", body.clone())
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(
        stock_of(&app, &shop, tea).await,
        (100, 3, 97),
        "reserved once"
    );
    let other = json!({ "customer_id": customer, "items": items(&[(tea, 4)]) });
    let reused = app.post_once("/v1/holds", &shop.key, "hold-1", other).await;
    assert_refused(&reused, 409, "idempotency_key_reused");

    // Concurrent duplicates of a capture: one order.
    let path = format!("/v1/holds/{}/capture", id(&first.body["id"]));
    let (one, two) = tokio::join!(
        app.post_once(&path, &shop.key, "capture-1", json!({})),
        app.post_once(&path, &shop.key, "capture-1", json!({})),
    );
    assert_eq!((one.status, two.status), (201, 201), "{one:?} {two:?}");
    assert_eq!(one.body, two.body);
    assert_eq!(stock_of(&app, &shop, tea).await, (97, 0, 97));
    // No body and `{}` are the same request.
    let replay = app
        .request(
            reqwest::Method::POST,
            &path,
            Some(&shop.key),
            &[("Idempotency-Key", "capture-1")],
            None,
        )
        .await;
    assert_eq!(replay.status, 201, "{replay:?}");
    assert_eq!(replay.body, one.body);

    let second = held(&app, &shop, customer, &[(tea, 1)], None).await;
    let path = format!("/v1/holds/{}/void", id(&second["id"]));
    let voided = app.post_once(&path, &shop.key, "void-1", json!({})).await;
    assert_eq!(voided.status, 200, "{voided:?}");
    let again = app.post_once(&path, &shop.key, "void-1", json!({})).await;
    assert_eq!(
        again.status, 200,
        "a replay, not hold_not_pending: {again:?}"
    );
    assert_eq!(again.body, voided.body);
    app.assert_audit_clean().await;
}

// ------------------------------------------------------------ SQL guards

async fn expect_denied(client: &Client, sql: &str) {
    let refusal = refused(client, sql).await;
    assert_eq!(
        refusal.code,
        SqlState::INSUFFICIENT_PRIVILEGE,
        "`{sql}`: {}",
        refusal.message
    );
}

async fn expect_constraint(client: &Client, sql: &str, constraint: &str) {
    let refusal = refused(client, sql).await;
    if crate::helpers::citus_url().is_some() && refusal.constraint.is_none() {
        // Citus passes on a node's error with its code and message but
        // without its constraint field: the code must still say which
        // kind of rule refused it; or, for a check deferred to COMMIT,
        // XX000 "could not commit transaction for shard ..." (the node's
        // own error only a WARNING; docs/scale-out.md).
        assert!(
            refusal.code.code().starts_with("23") || refusal.code == SqlState::INTERNAL_ERROR,
            "`{sql}`: {} ({:?})",
            refusal.message,
            refusal.code
        );
        return;
    }
    assert_eq!(
        refusal.constraint.as_deref(),
        Some(constraint),
        "`{sql}`: {} ({:?})",
        refusal.message,
        refusal.code
    );
}

#[tokio::test]
async fn postgresql_holds_the_holds_rules_against_any_writer() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let tea = app.product(&shop, 100, 10).await;
    let hold = held(&app, &shop, customer, &[(tea, 4)], None).await;
    let hold_id = id(&hold["id"]).to_owned();
    let bought = app.purchase(&shop, customer, &[(tea, 1)]).await;
    let order_id = bought.id();

    // The server's role writes none of it directly.
    let server = as_app(&app, shop.id).await;
    for sql in [
        format!(
            "INSERT INTO holds (business_id, id, customer_id, total, expires_at) \
             VALUES ('{}', gen_random_uuid(), '{customer}', 0, now() + interval '1 hour')",
            shop.id
        ),
        format!("UPDATE products SET reserved = 0 WHERE id = '{tea}'"),
        format!("UPDATE customers SET held = 0 WHERE id = '{customer}'"),
        "DELETE FROM pending_holds".to_owned(),
        "DELETE FROM pending_hold_items".to_owned(),
        format!(
            "INSERT INTO hold_endings (business_id, hold_id, outcome) VALUES ('{}', '{hold_id}', 'voided')",
            shop.id
        ),
        "UPDATE holds SET total = 0".to_owned(),
    ] {
        expect_denied(&server, &sql).await;
    }

    // The functions' owner, as a buggy use case would write: every rule
    // still holds.
    let writer = app.sql().await;
    writer
        .batch_execute("SET ROLE ontab_writer")
        .await
        .expect("become ontab_writer");
    writer
        .execute(
            "SELECT set_config('ontab.business_id', $1, false)",
            &[&shop.id.to_string()],
        )
        .await
        .expect("tenant");
    let b = shop.id;
    // Releasing a live hold's reservation without ending it.
    expect_constraint(
        &writer,
        &format!("DELETE FROM pending_hold_items WHERE hold_id = '{hold_id}'"),
        "holds_released_when_ended",
    )
    .await;
    expect_constraint(
        &writer,
        &format!("DELETE FROM pending_holds WHERE hold_id = '{hold_id}'"),
        "holds_released_when_ended",
    )
    .await;
    // Ending it expired before its time; captured by an order not its own.
    expect_constraint(
        &writer,
        &format!("INSERT INTO hold_endings (business_id, hold_id, outcome) VALUES ('{b}', '{hold_id}', 'expired')"),
        "hold_endings_in_time",
    )
    .await;
    expect_constraint(
        &writer,
        &format!(
            "INSERT INTO hold_endings (business_id, hold_id, outcome, order_id) \
             VALUES ('{b}', '{hold_id}', 'captured', '{order_id}')"
        ),
        "hold_endings_captured_by_its_order",
    )
    .await;
    // Editing a reservation, or making one twice.
    expect_denied(
        &writer,
        &format!("UPDATE pending_hold_items SET quantity = 1 WHERE hold_id = '{hold_id}'"),
    )
    .await;
    expect_constraint(
        &writer,
        &format!(
            "INSERT INTO pending_holds (business_id, hold_id, customer_id, total, expires_at) \
             SELECT business_id, id, customer_id, total + 1, expires_at FROM holds WHERE id = '{hold_id}'"
        ),
        "holds_reserve_what_they_hold",
    )
    .await;
    // A new hold reserving more than the stock, or credit beyond the limit.
    let new_hold = |quantity: i64, price: i64| {
        format!(
            "INSERT INTO holds (business_id, id, customer_id, total, expires_at) \
               VALUES ('{b}', '00000000-0000-0000-0000-0000000000aa', '{customer}', {total}, now() + interval '1 hour'); \
             INSERT INTO hold_items (business_id, hold_id, line_no, product_id, quantity, unit_price, line_total) \
               VALUES ('{b}', '00000000-0000-0000-0000-0000000000aa', 1, '{tea}', {quantity}, {price}, {total}); \
             INSERT INTO pending_holds (business_id, hold_id, customer_id, total, expires_at) \
               SELECT business_id, id, customer_id, total, expires_at FROM holds \
                WHERE id = '00000000-0000-0000-0000-0000000000aa'; \
             INSERT INTO pending_hold_items (business_id, hold_id, product_id, quantity, expires_at) \
               SELECT business_id, id, '{tea}', {quantity}, expires_at FROM holds \
                WHERE id = '00000000-0000-0000-0000-0000000000aa';",
            total = quantity * price
        )
    };
    // 10 in stock, 1 sold, 4 reserved: 5 left.
    expect_constraint(&writer, &new_hold(6, 1), "products_stock_covers_reserved").await;
    // Balance 100 and 400 held of 1,000: 500 left.
    expect_constraint(&writer, &new_hold(1, 501), "customers_held_within_limit").await;
    // A capture's order at another price, or beyond what was held, or with
    // no ending recorded.
    let capture_order = |quantity: i64, price: i64, ending: bool| {
        let ending = if ending {
            format!(
                "INSERT INTO hold_endings (business_id, hold_id, outcome, order_id) \
                   VALUES ('{b}', '{hold_id}', 'captured', '00000000-0000-0000-0000-0000000000bb');"
            )
        } else {
            String::new()
        };
        format!(
            "BEGIN; \
             INSERT INTO orders (business_id, id, customer_id, total, due_at, hold_id) \
               VALUES ('{b}', '00000000-0000-0000-0000-0000000000bb', '{customer}', {total}, now() + interval '30 days', '{hold_id}'); \
             INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total) \
               VALUES ('{b}', '00000000-0000-0000-0000-0000000000bb', 1, '{tea}', {quantity}, {price}, {total}); \
             {ending} SET CONSTRAINTS ALL IMMEDIATE; COMMIT;",
            total = quantity * price
        )
    };
    for (quantity, price, ending, constraint) in [
        (1, 1, true, "orders_capture_within_hold"),
        (5, 100, true, "orders_capture_within_hold"),
        (2, 100, false, "orders_capture_ends_hold"),
    ] {
        expect_constraint(&writer, &capture_order(quantity, price, ending), constraint).await;
        writer.batch_execute("ROLLBACK").await.expect("rollback");
    }
    // On hold: no new reservation.
    let paused = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &shop.key,
            json!({ "status": "on_hold" }),
        )
        .await;
    assert_eq!(paused.status, 200, "{paused:?}");
    expect_constraint(&writer, &new_hold(1, 1), "customers_hold_when_active").await;

    // Nothing of it stuck.
    assert_eq!(stock_of(&app, &shop, tea).await, (9, 4, 5));
    assert_eq!(credit_of(&app, &shop, customer).await.1, 400);
    app.assert_audit_clean().await;
}

// ----------------------------------------------------------------- audit

#[tokio::test]
async fn the_audit_finds_reservations_and_outcomes_that_disagree() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let tea = app.product(&shop, 100, 10).await;
    let live = held(&app, &shop, customer, &[(tea, 2)], None).await;
    let gone = held(&app, &shop, customer, &[(tea, 1)], None).await;
    assert_eq!(void(&app, &shop, &gone["id"]).await.status, 200);
    app.assert_audit_clean().await;

    // What only someone bypassing the triggers could do (a superuser with
    // triggers off, a restore gone wrong): the audit is the second opinion.
    // Timestamps moved without timestamptz arithmetic, which Citus refuses
    // in an UPDATE of a column by itself (not IMMUTABLE).
    let mut owner = app.sql().await;
    let tx = crate::helpers::triggers_off(&mut owner).await;
    tx.batch_execute(&format!(
        "UPDATE products SET reserved = reserved + 1 WHERE business_id = '{shop}' AND id = '{tea}';
         DELETE FROM pending_hold_items WHERE business_id = '{shop}' AND hold_id = '{}';
         UPDATE hold_endings SET ended_at = (ended_at AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
          WHERE business_id = '{shop}' AND hold_id = '{}';",
        id(&live["id"]),
        id(&gone["id"]),
        shop = shop.id,
    ))
    .await
    .expect("tamper");
    tx.commit().await.expect("commit the tampering");
    let mut client = app.sql().await;
    let report = ontab::app::audit::audit(&mut client, Some(shop.id))
        .await
        .expect("audit runs");
    assert!(
        report.failed("hold_reservations"),
        "{:#?}",
        report.violations
    );
    assert!(report.failed("hold_outcomes"), "{:#?}", report.violations);
    let details: Vec<&str> = report
        .violations
        .iter()
        .map(|violation| violation.detail.as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("reserved is 3, but its pending hold lines sum to 0")),
        "{details:#?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("no longer reserves all it holds")),
        "{details:#?}"
    );
    assert!(
        details.iter().any(|d| d.contains("after its expiry")),
        "{details:#?}"
    );
}
