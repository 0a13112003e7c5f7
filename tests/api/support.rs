//! Helpers of the per-resource API tests: problem+json assertions, raw
//! requests, pagination walks, and the small calls the tests repeat.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Business, Reply, TestApp};

/// The largest amount, price, limit or quantity the API takes: 2^53 - 1.
pub const MAX_SAFE: i64 = 9_007_199_254_740_991;

/// Asserts a problem answer with this status and code; returns its body.
pub fn problem(reply: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.code(), code, "{reply:?}");
    reply.body.clone()
}

/// The `field` of every entry of a 422's `errors`.
pub fn invalid_fields(reply: &Reply) -> Vec<String> {
    let body = problem(reply, 422, "validation_failed");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("422 without errors[]: {reply:?}"));
    assert!(!errors.is_empty(), "422 with empty errors[]: {reply:?}");
    errors
        .iter()
        .map(|error| {
            assert!(
                error["message"].as_str().is_some_and(|m| !m.is_empty()),
                "error without message: {reply:?}"
            );
            error["field"]
                .as_str()
                .unwrap_or_else(|| panic!("error without field: {reply:?}"))
                .to_owned()
        })
        .collect()
}

pub fn assert_invalid(reply: &Reply, fields: &[&str]) {
    assert_eq!(invalid_fields(reply), fields, "{reply:?}");
}

/// A request with raw bytes and an optional Content-Type, for bodies the
/// helpers cannot send (invalid JSON, other media types).
pub async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut request = app.http.request(method, format!("{}{path}", app.base_url));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.body(body).send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    assert!(status < 500, "server error {status}: {body}");
    Reply {
        status,
        headers,
        body,
    }
}

pub fn uuid_of(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("not a UUID: {value}"))
}

/// An RFC 3339 timestamp in UTC.
pub fn assert_utc_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("not RFC 3339: {text}: {error}"));
    assert_eq!(parsed.offset().local_minus_utc(), 0, "not UTC: {text}");
}

pub fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Asserts the object has at least these members.
pub fn assert_has(value: &Value, members: &[&str]) {
    for member in members {
        assert!(value.get(member).is_some(), "missing `{member}` in {value}");
    }
}

/// Follows `next_cursor` from the first page of `path` with `?limit=`,
/// returning every row and the size of each page.
pub async fn all_pages(
    app: &TestApp,
    key: &str,
    path: &str,
    limit: u32,
) -> (Vec<Value>, Vec<usize>) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            None => format!("{path}{separator}limit={limit}"),
            Some(cursor) => format!("{path}{separator}limit={limit}&cursor={cursor}"),
        };
        let page = app.get(&url, key).await;
        assert_eq!(page.status, 200, "{page:?}");
        assert_eq!(keys_of(&page.body), ["data", "next_cursor"], "{page:?}");
        let data = page.body["data"].as_array().expect("data is an array");
        assert!(
            data.len() <= limit as usize,
            "page over the limit: {page:?}"
        );
        sizes.push(data.len());
        rows.extend(data.iter().cloned());
        match &page.body["next_cursor"] {
            Value::Null => return (rows, sizes),
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor is neither null nor a string: {other}"),
        }
    }
    panic!("pagination of {path} never ended");
}

pub fn ids(rows: &[Value]) -> Vec<Uuid> {
    rows.iter().map(|row| uuid_of(&row["id"])).collect()
}

/// Asserts `seen` is exactly `expected` (each once) in the same order.
pub fn assert_each_once_in_order(seen: &[Uuid], expected: &[Uuid]) {
    let unique: HashSet<&Uuid> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a row was seen twice: {seen:?}");
    assert_eq!(seen, expected);
}

pub async fn named_customer(app: &TestApp, biz: &Business, name: &str, limit: i64) -> Value {
    let reply = app
        .post(
            "/v1/customers",
            &biz.key,
            json!({ "name": name, "credit_limit": limit }),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body
}

pub async fn customer_body(app: &TestApp, biz: &Business, customer: Uuid) -> Value {
    let reply = app
        .get(&format!("/v1/customers/{customer}"), &biz.key)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

pub async fn balance(app: &TestApp, biz: &Business, customer: Uuid) -> i64 {
    customer_body(app, biz, customer).await["balance"]
        .as_i64()
        .expect("balance is an integer")
}

pub async fn stock(app: &TestApp, biz: &Business, product: Uuid) -> i64 {
    let reply = app.get(&format!("/v1/products/{product}"), &biz.key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["stock"].as_i64().expect("stock is an integer")
}

pub async fn ledger(app: &TestApp, biz: &Business, customer: Uuid) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/v1/customers/{customer}/ledger?limit=200"),
            &biz.key,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["data"].as_array().expect("data").clone()
}

pub async fn pay(app: &TestApp, biz: &Business, customer: Uuid, amount: i64) -> Reply {
    app.post(
        "/v1/payments",
        &biz.key,
        json!({ "customer_id": customer, "amount": amount }),
    )
    .await
}

pub async fn give_back(app: &TestApp, biz: &Business, order: Uuid, lines: &[(Uuid, i64)]) -> Reply {
    let items: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({ "product_id": product, "quantity": quantity }))
        .collect();
    app.post(
        &format!("/v1/orders/{order}/returns"),
        &biz.key,
        json!({ "items": items }),
    )
    .await
}

pub async fn adjust(app: &TestApp, biz: &Business, product: Uuid, body: Value) -> Reply {
    app.post(
        &format!("/v1/products/{product}/stock-adjustments"),
        &biz.key,
        body,
    )
    .await
}

/// Everything a refused request must leave untouched: the customer, the
/// products, the ledger and orders as the API shows them, and row counts.
pub async fn everything(app: &TestApp, biz: &Business, customer: Uuid, products: &[Uuid]) -> Value {
    let mut product_bodies = Vec::new();
    for product in products {
        product_bodies.push(
            app.get(&format!("/v1/products/{product}"), &biz.key)
                .await
                .body,
        );
    }
    let counts = app
        .sql()
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM orders WHERE business_id = $1),
                    (SELECT count(*) FROM order_items WHERE business_id = $1),
                    (SELECT count(*) FROM credit_ledger WHERE business_id = $1),
                    (SELECT count(*) FROM returns WHERE business_id = $1),
                    (SELECT count(*) FROM return_items WHERE business_id = $1),
                    (SELECT count(*) FROM stock_adjustments WHERE business_id = $1)",
            &[&biz.id],
        )
        .await
        .expect("row counts");
    let counts: Vec<i64> = (0..6).map(|i| counts.get(i)).collect();
    json!({
        "customer": customer_body(app, biz, customer).await,
        "products": product_bodies,
        "ledger": ledger(app, biz, customer).await,
        "orders": app.get(&format!("/v1/orders?customer_id={customer}"), &biz.key).await.body,
        "all_orders": app.get("/v1/orders?limit=200", &biz.key).await.body,
        "counts": counts,
    })
}
