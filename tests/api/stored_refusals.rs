//! Definitive refusals decided before any work runs are stored under their
//! Idempotency-Key like any other 4xx (issue 11, item 6; the contract:
//! "definitive outcomes (2xx and 4xx) are stored and replayed"): a
//! malformed body (400), invalid values (422), an id in the path that names
//! nothing (404). So a key once answered "no" cannot later be spent on
//! another request: the same request replays the refusal, another is
//! `409 idempotency_key_reused`.
//!
//! Not stored, because there is nothing to store them under: a 401 (no
//! tenant), a 413 (the body was never read), an invalid Idempotency-Key
//! header (no key). The same key then still works for a valid request.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Business, Reply, TestApp};

/// A POST of `raw` bytes as JSON, with `idempotency_key`, by `api_key`.
async fn post_raw(
    app: &TestApp,
    path: &str,
    api_key: &str,
    idempotency_key: &str,
    raw: impl Into<reqwest::Body>,
) -> Reply {
    let response = app
        .http
        .post(format!("{}{path}", app.base_url))
        .bearer_auth(api_key)
        .header("content-type", "application/json")
        .header("Idempotency-Key", idempotency_key)
        .body(raw)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body read");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status < 500, "server error {status}: {body}");
    Reply {
        status,
        headers,
        body,
    }
}

fn replayed(reply: &Reply) -> bool {
    reply
        .headers
        .get("idempotent-replayed")
        .is_some_and(|value| value == "true")
}

/// A business with a customer, a product and an order to return against.
struct Shop {
    business: Business,
    customer: Uuid,
    product: Uuid,
    order: Uuid,
}

async fn shop(app: &TestApp) -> Shop {
    let business = app.business("Shop").await;
    let customer = app.customer(&business, 100_000).await;
    let product = app.product(&business, 100, 50).await;
    let order = app.purchase(&business, customer, &[(product, 5)]).await;
    assert_eq!(order.status, 201, "{order:?}");
    Shop {
        customer,
        product,
        order: order.id(),
        business,
    }
}

/// Every order, ledger entry, return and adjustment of the business: what a
/// refusal must leave as it was.
async fn effects(app: &TestApp) -> Value {
    app.sql()
        .await
        .query_one(
            "SELECT json_build_array(
                 (SELECT count(*) FROM orders), (SELECT count(*) FROM credit_ledger),
                 (SELECT count(*) FROM returns), (SELECT count(*) FROM stock_adjustments),
                 (SELECT json_agg(stock ORDER BY id) FROM products))",
            &[],
        )
        .await
        .expect("effects")
        .get(0)
}

/// `refused` under `key` at `path` gets `status`; then a valid request with
/// the same key is `409 idempotency_key_reused`; then `refused` again is
/// the first answer, replayed. Nothing is written along the way.
async fn assert_stored(
    app: &TestApp,
    shop: &Shop,
    case: &str,
    key: &str,
    (path, refused): (&str, &str),
    status: u16,
    (valid_path, valid): (&str, Value),
) {
    let before = effects(app).await;
    let first = post_raw(app, path, &shop.business.key, key, refused.to_owned()).await;
    assert_eq!(first.status, status, "{case}: {first:?}");
    assert!(!replayed(&first), "{case}: {first:?}");
    let expected_code = match status {
        400 => "malformed_request",
        404 => "not_found",
        _ => "validation_failed",
    };
    assert_eq!(first.code(), expected_code, "{case}");

    let other = post_raw(app, valid_path, &shop.business.key, key, valid.to_string()).await;
    assert_eq!(other.status, 409, "{case}: the key was spent: {other:?}");
    assert_eq!(other.code(), "idempotency_key_reused", "{case}");

    let again = post_raw(app, path, &shop.business.key, key, refused.to_owned()).await;
    assert_eq!(again.status, first.status, "{case}: {again:?}");
    assert_eq!(again.body, first.body, "{case}: the replay differs");
    assert!(
        replayed(&again),
        "{case}: not marked as a replay: {again:?}"
    );
    assert_eq!(effects(app).await, before, "{case}: something was written");
}

#[tokio::test]
async fn a_malformed_body_is_stored_under_its_key_and_replayed() {
    let app = TestApp::spawn().await;
    let shop = shop(&app).await;
    let purchase = json!({ "customer_id": shop.customer,
                           "items": [{ "product_id": shop.product, "quantity": 1 }] });
    let payment = json!({ "customer_id": shop.customer, "amount": 100 });
    let returns = format!("/v1/orders/{}/returns", shop.order);
    let adjustments = format!("/v1/products/{}/stock-adjustments", shop.product);
    let cases: [(&str, &str, &str, Value); 6] = [
        (
            "not JSON",
            "/v1/purchases",
            "{\"customer_id\": ",
            purchase.clone(),
        ),
        (
            "a wrong type",
            "/v1/payments",
            r#"{"customer_id": "someone", "amount": 100}"#,
            payment.clone(),
        ),
        (
            "an unknown field",
            &returns,
            r#"{"items": [], "refund": true}"#,
            json!({ "items": [{ "product_id": shop.product, "quantity": 1 }] }),
        ),
        (
            "an array for an object",
            &adjustments,
            r#"[-1, "lost"]"#,
            json!({ "delta": -1, "reason": "lost" }),
        ),
        // A key given twice is malformed at any depth; its body must not
        // pass for the valid body it would read as (last key wins).
        (
            "a duplicate key",
            "/v1/payments",
            &format!(
                r#"{{"customer_id": "{}", "amount": 1, "amount": 100}}"#,
                shop.customer
            ),
            payment.clone(),
        ),
        (
            "a duplicate key in a line",
            "/v1/purchases",
            &format!(
                r#"{{"customer_id": "{}", "items": [{{"product_id": "{}", "quantity": 5, "quantity": 1}}]}}"#,
                shop.customer, shop.product
            ),
            purchase.clone(),
        ),
    ];
    for (index, (case, path, refused, valid)) in cases.into_iter().enumerate() {
        let key = format!("malformed-{index}");
        assert_stored(&app, &shop, case, &key, (path, refused), 400, (path, valid)).await;
    }
}

#[tokio::test]
async fn invalid_values_are_stored_under_their_key_and_replayed() {
    let app = TestApp::spawn().await;
    let shop = shop(&app).await;
    let cases = [
        (
            "a zero quantity",
            "/v1/purchases".to_owned(),
            json!({ "customer_id": shop.customer,
                    "items": [{ "product_id": shop.product, "quantity": 0 }] }),
            json!({ "customer_id": shop.customer,
                    "items": [{ "product_id": shop.product, "quantity": 1 }] }),
        ),
        (
            "a negative amount",
            "/v1/payments".to_owned(),
            json!({ "customer_id": shop.customer, "amount": -5 }),
            json!({ "customer_id": shop.customer, "amount": 5 }),
        ),
        (
            "no lines",
            format!("/v1/orders/{}/returns", shop.order),
            json!({ "items": [] }),
            json!({ "items": [{ "product_id": shop.product, "quantity": 1 }] }),
        ),
        (
            "a delta of zero",
            format!("/v1/products/{}/stock-adjustments", shop.product),
            json!({ "delta": 0, "reason": "count" }),
            json!({ "delta": 1, "reason": "count" }),
        ),
    ];
    for (index, (case, path, refused, valid)) in cases.into_iter().enumerate() {
        let key = format!("invalid-{index}");
        let refused = refused.to_string();
        assert_stored(
            &app,
            &shop,
            case,
            &key,
            (&path, &refused),
            422,
            (&path, valid),
        )
        .await;
    }
}

#[tokio::test]
async fn an_id_in_the_path_that_names_nothing_is_stored_under_its_key_and_replayed() {
    let app = TestApp::spawn().await;
    let shop = shop(&app).await;
    let line = json!({ "items": [{ "product_id": shop.product, "quantity": 1 }] });
    let adjustment = json!({ "delta": 1, "reason": "count" });
    let real_returns = format!("/v1/orders/{}/returns", shop.order);
    let real_adjustments = format!("/v1/products/{}/stock-adjustments", shop.product);
    let cases = [
        (
            "not a UUID",
            "/v1/orders/not-an-order/returns".to_owned(),
            line.clone(),
            real_returns.clone(),
        ),
        (
            "an unknown order",
            format!("/v1/orders/{}/returns", Uuid::now_v7()),
            line.clone(),
            real_returns,
        ),
        (
            "not a UUID",
            "/v1/products/42/stock-adjustments".to_owned(),
            adjustment.clone(),
            real_adjustments.clone(),
        ),
        (
            "an unknown product",
            format!("/v1/products/{}/stock-adjustments", Uuid::now_v7()),
            adjustment.clone(),
            real_adjustments,
        ),
    ];
    for (index, (case, path, body, valid_path)) in cases.into_iter().enumerate() {
        let key = format!("unknown-{index}");
        let raw = body.to_string();
        assert_stored(
            &app,
            &shop,
            case,
            &key,
            (&path, &raw),
            404,
            (&valid_path, body),
        )
        .await;
    }
}

#[tokio::test]
async fn refusals_with_nothing_to_store_them_under_leave_the_key_unspent() {
    let app = TestApp::spawn().await;
    let shop = shop(&app).await;
    let payment = json!({ "customer_id": shop.customer, "amount": 100 }).to_string();

    // 401: no tenant to store it for.
    let unauthorized = post_raw(
        &app,
        "/v1/payments",
        "ontab_not_a_key",
        "unstored-1",
        payment.clone(),
    )
    .await;
    assert_eq!(unauthorized.status, 401, "{unauthorized:?}");
    // 413: the body was never read, so there is no request to fingerprint.
    let huge = format!(
        r#"{{"customer_id": "{}", "amount": 100, "note": "{}"}}"#,
        shop.customer,
        "x".repeat(1024 * 1024)
    );
    let too_large = post_raw(&app, "/v1/payments", &shop.business.key, "unstored-2", huge).await;
    assert_eq!(too_large.status, 413, "{too_large:?}");
    // An invalid key header: no key to store anything under (the body's
    // own fault is the answer, if it has one).
    for bad_key in [String::new(), "k".repeat(256)] {
        let refused = post_raw(
            &app,
            "/v1/payments",
            &shop.business.key,
            &bad_key,
            "{\"amount\": ",
        )
        .await;
        assert_eq!(refused.status, 400, "{bad_key:?}: {refused:?}");
    }

    for key in ["unstored-1", "unstored-2"] {
        let paid = post_raw(
            &app,
            "/v1/payments",
            &shop.business.key,
            key,
            payment.clone(),
        )
        .await;
        assert_eq!(paid.status, 201, "{key}: {paid:?}");
        assert!(!replayed(&paid), "{key}: {paid:?}");
    }
}
