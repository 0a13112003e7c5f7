//! Black-box tests of the HTTP contract (`api-contract.md`): every endpoint's
//! happy path, every error code with its extra members and the problem+json
//! shape, the precedence of checks, all-or-nothing purchases, and pagination.
//! Not covered here: the overdue report, the ops endpoints, idempotency,
//! tenant isolation and concurrency (their own files).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, Business, Reply, TestApp};

/// The largest amount, price, limit or quantity the API takes: 2^53 - 1.
const MAX_SAFE: i64 = 9_007_199_254_740_991;

// ---------------------------------------------------------------- helpers

/// Asserts a problem answer with this status and code; returns its body.
fn problem(reply: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.code(), code, "{reply:?}");
    reply.body.clone()
}

/// The `field` of every entry of a 422's `errors`.
fn invalid_fields(reply: &Reply) -> Vec<String> {
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

fn assert_invalid(reply: &Reply, fields: &[&str]) {
    assert_eq!(invalid_fields(reply), fields, "{reply:?}");
}

/// A request with raw bytes and an optional Content-Type, for bodies the
/// helpers cannot send (invalid JSON, other media types).
async fn raw(
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

fn uuid_of(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("not a UUID: {value}"))
}

/// An RFC 3339 timestamp in UTC.
fn assert_utc_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("not RFC 3339: {text}: {error}"));
    assert_eq!(parsed.offset().local_minus_utc(), 0, "not UTC: {text}");
}

fn keys_of(value: &Value) -> Vec<String> {
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
fn assert_has(value: &Value, members: &[&str]) {
    for member in members {
        assert!(value.get(member).is_some(), "missing `{member}` in {value}");
    }
}

/// Follows `next_cursor` from the first page of `path` with `?limit=`,
/// returning every row and the size of each page.
async fn all_pages(app: &TestApp, key: &str, path: &str, limit: u32) -> (Vec<Value>, Vec<usize>) {
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

fn ids(rows: &[Value]) -> Vec<Uuid> {
    rows.iter().map(|row| uuid_of(&row["id"])).collect()
}

/// Asserts `seen` is exactly `expected` (each once) in the same order.
fn assert_each_once_in_order(seen: &[Uuid], expected: &[Uuid]) {
    let unique: HashSet<&Uuid> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a row was seen twice: {seen:?}");
    assert_eq!(seen, expected);
}

async fn named_customer(app: &TestApp, biz: &Business, name: &str, limit: i64) -> Value {
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

async fn customer_body(app: &TestApp, biz: &Business, customer: Uuid) -> Value {
    let reply = app
        .get(&format!("/v1/customers/{customer}"), &biz.key)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn balance(app: &TestApp, biz: &Business, customer: Uuid) -> i64 {
    customer_body(app, biz, customer).await["balance"]
        .as_i64()
        .expect("balance is an integer")
}

async fn stock(app: &TestApp, biz: &Business, product: Uuid) -> i64 {
    let reply = app.get(&format!("/v1/products/{product}"), &biz.key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["stock"].as_i64().expect("stock is an integer")
}

async fn ledger(app: &TestApp, biz: &Business, customer: Uuid) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/v1/customers/{customer}/ledger?limit=200"),
            &biz.key,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["data"].as_array().expect("data").clone()
}

async fn pay(app: &TestApp, biz: &Business, customer: Uuid, amount: i64) -> Reply {
    app.post(
        "/v1/payments",
        &biz.key,
        json!({ "customer_id": customer, "amount": amount }),
    )
    .await
}

async fn give_back(app: &TestApp, biz: &Business, order: Uuid, lines: &[(Uuid, i64)]) -> Reply {
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

async fn adjust(app: &TestApp, biz: &Business, product: Uuid, body: Value) -> Reply {
    app.post(
        &format!("/v1/products/{product}/stock-adjustments"),
        &biz.key,
        body,
    )
    .await
}

/// Everything a refused request must leave untouched: the customer, the
/// products, the ledger and orders as the API shows them, and row counts.
async fn everything(app: &TestApp, biz: &Business, customer: Uuid, products: &[Uuid]) -> Value {
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

// ------------------------------------------------------------- businesses

#[tokio::test]
async fn creating_a_business_answers_201_with_usd_by_default_and_a_working_key_shown_once() {
    let app = TestApp::spawn().await;
    let reply = app
        .request(
            Method::POST,
            "/v1/businesses",
            Some(ADMIN_TOKEN),
            &[],
            Some(&json!({ "name": "Acme" })),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let body = &reply.body;
    assert_has(body, &["id", "name", "currency", "created_at", "api_key"]);
    uuid_of(&body["id"]);
    assert_eq!(body["name"], "Acme");
    assert_eq!(body["currency"], "USD");
    assert_utc_timestamp(&body["created_at"]);
    let key_id = uuid_of(&body["api_key"]["id"]);
    let key = body["api_key"]["key"]
        .as_str()
        .expect("plain key")
        .to_owned();
    assert!(!key.is_empty());

    // The key works for tenant calls, and is listed by id only.
    let keys = app.get("/v1/api-keys", &key).await;
    assert_eq!(keys.status, 200, "{keys:?}");
    assert_eq!(ids(keys.body["data"].as_array().expect("data")), [key_id]);
    assert!(!keys.body.to_string().contains(&key), "{keys:?}");

    // Only a hash is stored: no column of the key's row holds the plain key
    // or its secret part.
    let secret = key.rsplit('_').next().expect("key has a secret part");
    let stored: String = app
        .sql()
        .await
        .query_one("SELECT row_to_json(k)::text FROM api_keys k", &[])
        .await
        .expect("stored key")
        .get(0);
    assert!(!stored.contains(secret), "plain secret stored: {stored}");
}

#[tokio::test]
async fn a_business_takes_a_given_currency_and_validates_name_and_currency() {
    let app = TestApp::spawn().await;
    let admin = |body: Value| {
        let app = &app;
        async move {
            app.request(
                Method::POST,
                "/v1/businesses",
                Some(ADMIN_TOKEN),
                &[],
                Some(&body),
            )
            .await
        }
    };
    let euro = admin(json!({ "name": "  Café  ", "currency": "EUR" })).await;
    assert_eq!(euro.status, 201, "{euro:?}");
    assert_eq!(euro.body["currency"], "EUR");
    assert_eq!(euro.body["name"], "Café", "names are trimmed");

    assert_invalid(
        &admin(json!({ "name": "X", "currency": "eur" })).await,
        &["currency"],
    );
    assert_invalid(
        &admin(json!({ "name": "X", "currency": "EURO" })).await,
        &["currency"],
    );
    assert_invalid(&admin(json!({ "name": "" })).await, &["name"]);
    assert_invalid(&admin(json!({ "name": "x".repeat(201) })).await, &["name"]);
    assert_invalid(
        &admin(json!({ "name": " ", "currency": "usd" })).await,
        &["name", "currency"],
    );
    let longest = admin(json!({ "name": "x".repeat(200) })).await;
    assert_eq!(longest.status, 201, "{longest:?}");

    problem(
        &admin(json!({ "currency": "USD" })).await,
        400,
        "malformed_request",
    );
    problem(&admin(json!({ "name": 5 })).await, 400, "malformed_request");
    problem(
        &admin(json!({ "name": "X", "currency": "USD", "plan": "gold" })).await,
        400,
        "malformed_request",
    );
}

#[tokio::test]
async fn the_business_endpoint_takes_only_the_admin_token() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let body = json!({ "name": "Other" });
    for key in [None, Some(shop.key.as_str()), Some("not-the-admin-token")] {
        let reply = app
            .request(Method::POST, "/v1/businesses", key, &[], Some(&body))
            .await;
        problem(&reply, 401, "unauthorized");
    }
    // The admin token is no tenant key.
    problem(
        &app.get("/v1/customers", ADMIN_TOKEN).await,
        401,
        "unauthorized",
    );
    problem(
        &app.post(
            "/v1/customers",
            ADMIN_TOKEN,
            json!({ "name": "C", "credit_limit": 1 }),
        )
        .await,
        401,
        "unauthorized",
    );
    // Unauthorized comes before malformed.
    let reply = raw(
        &app,
        Method::POST,
        "/v1/businesses",
        Some(&shop.key),
        Some("application/json"),
        b"{not json".to_vec(),
    )
    .await;
    problem(&reply, 401, "unauthorized");
}

// --------------------------------------------------------------- api keys

#[tokio::test]
async fn api_keys_are_issued_and_listed_without_their_secret() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let created = app.post("/v1/api-keys", &shop.key, json!({})).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(keys_of(&created.body), ["created_at", "id", "key"]);
    assert_utc_timestamp(&created.body["created_at"]);
    let second_id = created.id();
    let second = created.body["key"].as_str().expect("plain key").to_owned();
    assert_ne!(second, shop.key);

    // Also without a body at all.
    let third = app
        .request(Method::POST, "/v1/api-keys", Some(&second), &[], None)
        .await;
    assert_eq!(third.status, 201, "{third:?}");
    let third_key = third.body["key"].as_str().expect("plain key").to_owned();

    // The new key acts for the same business.
    let customer = app.customer(&shop, 100).await;
    let seen = app.get(&format!("/v1/customers/{customer}"), &second).await;
    assert_eq!(seen.status, 200, "{seen:?}");

    let list = app.get("/v1/api-keys", &shop.key).await;
    assert_eq!(list.status, 200, "{list:?}");
    let rows = list.body["data"].as_array().expect("data");
    assert_eq!(rows.len(), 3, "{list:?}");
    assert!(ids(rows).contains(&second_id));
    for row in rows {
        assert_eq!(keys_of(row), ["created_at", "id", "revoked_at"], "{row}");
        assert_eq!(row["revoked_at"], Value::Null);
        assert_utc_timestamp(&row["created_at"]);
    }
    let text = list.body.to_string();
    for key in [&shop.key, &second, &third_key] {
        assert!(!text.contains(key.as_str()), "a key is listed: {text}");
    }
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once_and_revocation_answers_204() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let created = app.post("/v1/api-keys", &shop.key, json!({})).await;
    assert_eq!(created.status, 201, "{created:?}");
    let (second_id, second) = (
        created.id(),
        created.body["key"].as_str().expect("key").to_owned(),
    );
    assert_eq!(app.get("/v1/customers", &second).await.status, 200);

    let revoked = app
        .delete(&format!("/v1/api-keys/{second_id}"), &shop.key)
        .await;
    assert_eq!(revoked.status, 204, "{revoked:?}");
    assert_eq!(revoked.body, Value::Null, "204 has no body");

    problem(
        &app.get("/v1/customers", &second).await,
        401,
        "unauthorized",
    );
    problem(
        &app.post("/v1/api-keys", &second, json!({})).await,
        401,
        "unauthorized",
    );
    // The other key still works and sees the revocation time.
    let list = app.get("/v1/api-keys", &shop.key).await;
    let row = list.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|row| uuid_of(&row["id"]) == second_id)
        .expect("revoked key still listed")
        .clone();
    assert_utc_timestamp(&row["revoked_at"]);

    // Unknown, foreign and malformed ids name nothing.
    let other_key_id = app.get("/v1/api-keys", &other.key).await.body["data"][0]["id"].clone();
    for id in [
        Uuid::new_v4().to_string(),
        other_key_id.as_str().expect("id").to_owned(),
        "not-a-uuid".to_owned(),
    ] {
        problem(
            &app.delete(&format!("/v1/api-keys/{id}"), &shop.key).await,
            404,
            "not_found",
        );
    }
    assert_eq!(app.get("/v1/customers", &other.key).await.status, 200);

    // A business may revoke the very key it calls with.
    let own_id = list.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|row| uuid_of(&row["id"]))
        .find(|id| *id != second_id)
        .expect("first key");
    let own = app
        .delete(&format!("/v1/api-keys/{own_id}"), &shop.key)
        .await;
    assert_eq!(own.status, 204, "{own:?}");
    problem(
        &app.get("/v1/api-keys", &shop.key).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn api_keys_page_through_with_cursors() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    for _ in 0..6 {
        assert_eq!(
            app.post("/v1/api-keys", &shop.key, json!({})).await.status,
            201
        );
    }
    let (everything, _) = all_pages(&app, &shop.key, "/v1/api-keys", 200).await;
    assert_eq!(everything.len(), 7);
    let (rows, sizes) = all_pages(&app, &shop.key, "/v1/api-keys", 3).await;
    assert_eq!(sizes, [3, 3, 1]);
    assert_each_once_in_order(&ids(&rows), &ids(&everything));
}

// ------------------------------------------------------------------ auth

#[tokio::test]
async fn missing_bad_and_foreign_credentials_are_401_problems() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let no_key = app
        .request(Method::GET, "/v1/customers", None, &[], None)
        .await;
    problem(&no_key, 401, "unauthorized");

    // Shaped like a key, but unknown; and a real key id with a wrong secret.
    let (key_id, secret) = shop
        .key
        .strip_prefix("ontab_")
        .and_then(|rest| rest.split_once('_'))
        .expect("key format ontab_<id>_<secret>");
    let mut tampered = secret.to_owned();
    let last = if tampered.ends_with('A') { 'B' } else { 'A' };
    tampered.pop();
    tampered.push(last);
    let unknown_id = format!("ontab_{}_{secret}", Uuid::new_v4().simple());
    let wrong_secret = format!("ontab_{key_id}_{tampered}");
    for key in [
        "garbage",
        "",
        unknown_id.as_str(),
        wrong_secret.as_str(),
        ADMIN_TOKEN,
    ] {
        problem(&app.get("/v1/customers", key).await, 401, "unauthorized");
    }
    // Another scheme than Bearer.
    let basic = app
        .request(
            Method::GET,
            "/v1/customers",
            None,
            &[("Authorization", &format!("Basic {}", shop.key))],
            None,
        )
        .await;
    problem(&basic, 401, "unauthorized");

    // Every tenant endpoint asks for a key, before looking at anything else.
    let id = Uuid::new_v4();
    let routes = [
        (Method::POST, "/v1/api-keys".to_owned()),
        (Method::GET, "/v1/api-keys".to_owned()),
        (Method::DELETE, format!("/v1/api-keys/{id}")),
        (Method::POST, "/v1/customers".to_owned()),
        (Method::GET, "/v1/customers".to_owned()),
        (Method::GET, format!("/v1/customers/{id}")),
        (Method::PATCH, format!("/v1/customers/{id}")),
        (Method::GET, format!("/v1/customers/{id}/ledger")),
        (Method::POST, "/v1/products".to_owned()),
        (Method::GET, "/v1/products".to_owned()),
        (Method::GET, format!("/v1/products/{id}")),
        (Method::PATCH, format!("/v1/products/{id}")),
        (Method::POST, format!("/v1/products/{id}/stock-adjustments")),
        (Method::POST, "/v1/purchases".to_owned()),
        (Method::POST, "/v1/payments".to_owned()),
        (Method::GET, "/v1/orders".to_owned()),
        (Method::GET, format!("/v1/orders/{id}")),
        (Method::POST, format!("/v1/orders/{id}/returns")),
    ];
    for (method, path) in routes {
        let reply = raw(
            &app,
            method.clone(),
            &path,
            None,
            Some("application/json"),
            b"{broken".to_vec(),
        )
        .await;
        assert_eq!(reply.status, 401, "{method} {path}: {reply:?}");
        assert_eq!(reply.code(), "unauthorized");
    }
}

// ------------------------------------------------------------- customers

#[tokio::test]
async fn customers_are_created_read_listed_and_changed() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let created = named_customer(&app, &shop, "  Ada  ", 5_000).await;
    assert_eq!(
        keys_of(&created),
        [
            "available_credit",
            "balance",
            "created_at",
            "credit_limit",
            "held",
            "id",
            "name",
            "payment_terms_days",
            "status"
        ]
    );
    assert_eq!(created["name"], "Ada");
    assert_eq!(created["status"], "active");
    assert_eq!(created["payment_terms_days"], 30);
    assert_eq!(created["credit_limit"], 5_000);
    assert_eq!(created["balance"], 0);
    assert_eq!(created["available_credit"], 5_000);
    assert_utc_timestamp(&created["created_at"]);
    let id = uuid_of(&created["id"]);

    assert_eq!(customer_body(&app, &shop, id).await, created);

    let zero = named_customer(&app, &shop, "Zero", 0).await;
    assert_eq!(zero["available_credit"], 0);

    let list = app.get("/v1/customers", &shop.key).await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["next_cursor"], Value::Null);
    assert_eq!(list.body["data"], json!([created, zero]), "oldest first");

    let renamed = app
        .patch(
            &format!("/v1/customers/{id}"),
            &shop.key,
            json!({ "name": "Ada L." }),
        )
        .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    assert_eq!(renamed.body["name"], "Ada L.");
    assert_eq!(renamed.body["credit_limit"], 5_000);

    let raised = app
        .patch(
            &format!("/v1/customers/{id}"),
            &shop.key,
            json!({ "credit_limit": 7_000 }),
        )
        .await;
    assert_eq!(raised.status, 200, "{raised:?}");
    assert_eq!(raised.body["name"], "Ada L.");
    assert_eq!(raised.body["credit_limit"], 7_000);
    assert_eq!(raised.body["available_credit"], 7_000);

    let both = app
        .patch(
            &format!("/v1/customers/{id}"),
            &shop.key,
            json!({ "name": "Ada", "credit_limit": 0 }),
        )
        .await;
    assert_eq!(both.status, 200, "{both:?}");
    let nothing = app
        .patch(&format!("/v1/customers/{id}"), &shop.key, json!({}))
        .await;
    assert_eq!(nothing.status, 200, "{nothing:?}");
    assert_eq!(nothing.body, both.body);
    assert_eq!(nothing.body["created_at"], created["created_at"]);
    assert_eq!(customer_body(&app, &shop, id).await, both.body);
}

#[tokio::test]
async fn a_limit_lowered_below_the_balance_blocks_new_purchases_only() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 1_000, 20).await;
    let order = app.purchase(&shop, customer, &[(product, 6)]).await;
    assert_eq!(order.status, 201, "{order:?}");

    let lowered = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &shop.key,
            json!({ "credit_limit": 5_000 }),
        )
        .await;
    assert_eq!(lowered.status, 200, "{lowered:?}");
    assert_eq!(lowered.body["credit_limit"], 5_000);
    assert_eq!(lowered.body["balance"], 6_000);
    assert_eq!(lowered.body["available_credit"], 0, "never negative");

    let refused = app.purchase(&shop, customer, &[(product, 1)]).await;
    let body = problem(&refused, 409, "credit_limit_exceeded");
    assert_eq!(body["credit_limit"], 5_000);
    assert_eq!(body["balance"], 6_000);
    assert_eq!(body["order_total"], 1_000);

    // Payments and returns still go through.
    assert_eq!(pay(&app, &shop, customer, 500).await.status, 201);
    let returned = give_back(&app, &shop, order.id(), &[(product, 1)]).await;
    assert_eq!(returned.status, 201, "{returned:?}");
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], 4_500);
    assert_eq!(now["available_credit"], 500);
}

#[tokio::test]
async fn customer_values_are_validated() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let create = |body: Value| {
        let (app, key) = (&app, shop.key.clone());
        async move { app.post("/v1/customers", &key, body).await }
    };
    assert_invalid(
        &create(json!({ "name": "", "credit_limit": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": "   ", "credit_limit": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": "é".repeat(201), "credit_limit": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": "A\u{0}B", "credit_limit": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": "A", "credit_limit": -1 })).await,
        &["credit_limit"],
    );
    assert_invalid(
        &create(json!({ "name": "", "credit_limit": -1 })).await,
        &["name", "credit_limit"],
    );
    let longest = create(json!({ "name": "é".repeat(200), "credit_limit": 0 })).await;
    assert_eq!(longest.status, 201, "{longest:?}");
    // Beyond 2^53 - 1 a JavaScript client would read another number: an
    // invalid value (422), whether or not it fits in i64.
    for beyond in [
        json!(MAX_SAFE + 1),
        json!(i64::MAX),
        json!(9_223_372_036_854_775_808_u64),
        json!(u64::MAX),
    ] {
        assert_invalid(
            &create(json!({ "name": "A", "credit_limit": beyond })).await,
            &["credit_limit"],
        );
    }
    let largest = create(json!({ "name": "A", "credit_limit": MAX_SAFE })).await;
    assert_eq!(largest.status, 201, "{largest:?}");
    assert_eq!(largest.body["available_credit"], MAX_SAFE);

    for body in [
        json!({ "name": "A" }),
        json!({ "credit_limit": 1 }),
        json!({ "name": "A", "credit_limit": "100" }),
        json!({ "name": "A", "credit_limit": 1.5 }),
        json!({ "name": "A", "credit_limit": null }),
        json!({ "name": 7, "credit_limit": 1 }),
        json!({ "name": "A", "credit_limit": 1, "balance": 5 }),
        json!([{ "name": "A", "credit_limit": 1 }]),
    ] {
        let reply = create(body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.code(), "malformed_request");
    }

    let id = app.customer(&shop, 100).await;
    let path = format!("/v1/customers/{id}");
    assert_invalid(
        &app.patch(&path, &shop.key, json!({ "name": "" })).await,
        &["name"],
    );
    assert_invalid(
        &app.patch(&path, &shop.key, json!({ "credit_limit": -5 }))
            .await,
        &["credit_limit"],
    );
    problem(
        &app.patch(&path, &shop.key, json!({ "credit_limit": "5" }))
            .await,
        400,
        "malformed_request",
    );
    problem(
        &app.patch(&path, &shop.key, json!({ "balance": 0 })).await,
        400,
        "malformed_request",
    );
    assert_eq!(customer_body(&app, &shop, id).await["credit_limit"], 100);
}

#[tokio::test]
async fn unknown_customers_are_404_and_validation_comes_first() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let foreign = app.customer(&other, 100).await;
    for id in [
        Uuid::new_v4().to_string(),
        foreign.to_string(),
        "42".to_owned(),
    ] {
        let path = format!("/v1/customers/{id}");
        problem(&app.get(&path, &shop.key).await, 404, "not_found");
        problem(
            &app.patch(&path, &shop.key, json!({ "name": "X" })).await,
            404,
            "not_found",
        );
        problem(
            &app.get(&format!("{path}/ledger"), &shop.key).await,
            404,
            "not_found",
        );
        // Invalid values are reported before the unknown id.
        assert_invalid(
            &app.patch(&path, &shop.key, json!({ "name": "" })).await,
            &["name"],
        );
        assert_invalid(
            &app.get(&format!("{path}/ledger?limit=0"), &shop.key).await,
            &["limit"],
        );
    }
    assert_eq!(
        customer_body(&app, &other, foreign).await["name"],
        "Customer"
    );
}

// -------------------------------------------------------------- products

#[tokio::test]
async fn products_are_created_read_listed_and_changed() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let created = app
        .post(
            "/v1/products",
            &shop.key,
            json!({ "name": " Tea ", "price": 1_250, "stock": 10 }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(
        keys_of(&created.body),
        [
            "available",
            "created_at",
            "id",
            "name",
            "price",
            "reserved",
            "stock"
        ]
    );
    assert_eq!(created.body["name"], "Tea");
    assert_eq!(created.body["price"], 1_250);
    assert_eq!(created.body["stock"], 10);
    assert_utc_timestamp(&created.body["created_at"]);
    let id = created.id();

    let free = app
        .post(
            "/v1/products",
            &shop.key,
            json!({ "name": "Sample", "price": 0, "stock": 0 }),
        )
        .await;
    assert_eq!(free.status, 201, "{free:?}");

    let read = app.get(&format!("/v1/products/{id}"), &shop.key).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body, created.body);

    let list = app.get("/v1/products", &shop.key).await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["data"], json!([created.body, free.body]));
    assert_eq!(list.body["next_cursor"], Value::Null);

    let path = format!("/v1/products/{id}");
    let repriced = app.patch(&path, &shop.key, json!({ "price": 1_500 })).await;
    assert_eq!(repriced.status, 200, "{repriced:?}");
    assert_eq!(repriced.body["price"], 1_500);
    assert_eq!(repriced.body["name"], "Tea");
    assert_eq!(repriced.body["stock"], 10);
    let renamed = app
        .patch(&path, &shop.key, json!({ "name": "Green tea", "price": 0 }))
        .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    assert_eq!(renamed.body["name"], "Green tea");
    assert_eq!(renamed.body["price"], 0);
    let nothing = app.patch(&path, &shop.key, json!({})).await;
    assert_eq!(nothing.status, 200, "{nothing:?}");
    assert_eq!(nothing.body, renamed.body);
    // Stock is not a PATCH field: it moves only through adjustments.
    problem(
        &app.patch(&path, &shop.key, json!({ "stock": 99 })).await,
        400,
        "malformed_request",
    );
    assert_eq!(stock(&app, &shop, id).await, 10);
}

#[tokio::test]
async fn product_values_are_validated_and_unknown_products_are_404() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let create = |body: Value| {
        let (app, key) = (&app, shop.key.clone());
        async move { app.post("/v1/products", &key, body).await }
    };
    assert_invalid(
        &create(json!({ "name": "P", "price": -1, "stock": 1 })).await,
        &["price"],
    );
    assert_invalid(
        &create(json!({ "name": "P", "price": 1, "stock": -1 })).await,
        &["stock"],
    );
    assert_invalid(
        &create(json!({ "name": "", "price": 1, "stock": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": "x".repeat(201), "price": 1, "stock": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": " ", "price": -1, "stock": -1 })).await,
        &["name", "price", "stock"],
    );
    for body in [
        json!({ "name": "P", "price": 1 }),
        json!({ "name": "P", "price": "1", "stock": 1 }),
        json!({ "name": "P", "price": 12.5, "stock": 1 }),
        json!({ "name": "P", "price": 1, "stock": 1, "sku": "x" }),
    ] {
        problem(&create(body).await, 400, "malformed_request");
    }

    let id = app.product(&shop, 100, 1).await;
    let path = format!("/v1/products/{id}");
    assert_invalid(
        &app.patch(&path, &shop.key, json!({ "price": -1 })).await,
        &["price"],
    );
    assert_invalid(
        &app.patch(&path, &shop.key, json!({ "name": "" })).await,
        &["name"],
    );
    assert_eq!(
        app.get(&path, &shop.key).await.body["price"],
        100,
        "refused change left the product alone"
    );

    let foreign = app.product(&other, 100, 1).await;
    for id in [
        Uuid::new_v4().to_string(),
        foreign.to_string(),
        "nope".to_owned(),
    ] {
        let path = format!("/v1/products/{id}");
        problem(&app.get(&path, &shop.key).await, 404, "not_found");
        problem(
            &app.patch(&path, &shop.key, json!({ "price": 5 })).await,
            404,
            "not_found",
        );
        assert_invalid(
            &app.patch(&path, &shop.key, json!({ "price": -5 })).await,
            &["price"],
        );
        let adjusted = app
            .post(
                &format!("{path}/stock-adjustments"),
                &shop.key,
                json!({ "delta": 1, "reason": "x" }),
            )
            .await;
        problem(&adjusted, 404, "not_found");
        let invalid = app
            .post(
                &format!("{path}/stock-adjustments"),
                &shop.key,
                json!({ "delta": 0 }),
            )
            .await;
        assert_invalid(&invalid, &["delta"]);
    }
    assert_eq!(stock(&app, &other, foreign).await, 1);
}

#[tokio::test]
async fn stock_adjustments_move_stock_but_never_below_zero() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 100, 5).await;

    let added = adjust(
        &app,
        &shop,
        product,
        json!({ "delta": 5, "reason": "restock" }),
    )
    .await;
    assert_eq!(added.status, 201, "{added:?}");
    assert_has(&added.body, &["product", "adjustment"]);
    assert_eq!(
        keys_of(&added.body["product"]),
        [
            "available",
            "created_at",
            "id",
            "name",
            "price",
            "reserved",
            "stock"
        ]
    );
    assert_eq!(uuid_of(&added.body["product"]["id"]), product);
    assert_eq!(added.body["product"]["stock"], 10);
    let adjustment = &added.body["adjustment"];
    assert_has(
        adjustment,
        &["id", "delta", "reason", "stock_after", "created_at"],
    );
    uuid_of(&adjustment["id"]);
    assert_eq!(adjustment["delta"], 5);
    assert_eq!(adjustment["reason"], "restock");
    assert_eq!(adjustment["stock_after"], 10);
    assert_utc_timestamp(&adjustment["created_at"]);

    let removed = adjust(
        &app,
        &shop,
        product,
        json!({ "delta": -3, "reason": "damaged" }),
    )
    .await;
    assert_eq!(removed.status, 201, "{removed:?}");
    assert_eq!(removed.body["adjustment"]["delta"], -3);
    assert_eq!(removed.body["adjustment"]["stock_after"], 7);
    assert_eq!(removed.body["product"]["stock"], 7);
    assert_ne!(removed.body["adjustment"]["id"], adjustment["id"]);

    // The reason may be left out.
    let silent = adjust(&app, &shop, product, json!({ "delta": 1 })).await;
    assert_eq!(silent.status, 201, "{silent:?}");
    assert_eq!(silent.body["adjustment"]["stock_after"], 8);
    assert_eq!(stock(&app, &shop, product).await, 8);

    let refused = adjust(
        &app,
        &shop,
        product,
        json!({ "delta": -9, "reason": "lost" }),
    )
    .await;
    let body = problem(&refused, 409, "insufficient_stock");
    assert_eq!(uuid_of(&body["product_id"]), product);
    assert_eq!(body["requested"], 9);
    assert_eq!(body["available"], 8);
    assert_eq!(stock(&app, &shop, product).await, 8, "nothing changed");

    // Down to exactly zero is fine.
    let emptied = adjust(&app, &shop, product, json!({ "delta": -8 })).await;
    assert_eq!(emptied.status, 201, "{emptied:?}");
    assert_eq!(emptied.body["product"]["stock"], 0);

    assert_invalid(
        &adjust(&app, &shop, product, json!({ "delta": 0 })).await,
        &["delta"],
    );
    assert_invalid(
        &adjust(
            &app,
            &shop,
            product,
            json!({ "delta": 1, "reason": "r".repeat(201) }),
        )
        .await,
        &["reason"],
    );
    assert_invalid(
        &adjust(
            &app,
            &shop,
            product,
            json!({ "delta": 0, "reason": "r".repeat(201) }),
        )
        .await,
        &["delta", "reason"],
    );
    for body in [
        json!({ "reason": "x" }),
        json!({ "delta": "1" }),
        json!({ "delta": 1.5 }),
        json!({ "delta": 1, "note": "x" }),
    ] {
        problem(
            &adjust(&app, &shop, product, body).await,
            400,
            "malformed_request",
        );
    }
    assert_eq!(stock(&app, &shop, product).await, 0);
}

#[tokio::test]
async fn extreme_stock_adjustments_are_refused_without_a_server_error() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 1, MAX_SAFE - 1).await;
    let over = adjust(&app, &shop, product, json!({ "delta": 2 })).await;
    assert_invalid(&over, &["delta"]);
    let to_max = adjust(&app, &shop, product, json!({ "delta": 1 })).await;
    assert_eq!(to_max.status, 201, "{to_max:?}");
    assert_eq!(to_max.body["product"]["stock"], MAX_SAFE);

    // Deltas beyond ±(2^53 - 1), i64::MIN included, are invalid values,
    // never a 500.
    let small = app.product(&shop, 1, 3).await;
    for beyond in [-MAX_SAFE - 1, i64::MIN, MAX_SAFE + 1, i64::MAX] {
        let refused = adjust(&app, &shop, small, json!({ "delta": beyond })).await;
        assert_invalid(&refused, &["delta"]);
    }
    let almost = adjust(&app, &shop, small, json!({ "delta": -MAX_SAFE })).await;
    let body = problem(&almost, 409, "insufficient_stock");
    assert_eq!(body["requested"], MAX_SAFE);
    assert_eq!(body["available"], 3);
    assert_eq!(stock(&app, &shop, small).await, 3);
}

// ------------------------------------------------------------- purchases

#[tokio::test]
async fn a_purchase_creates_an_order_at_current_prices_and_moves_stock_and_balance() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let tea = app.product(&shop, 1_250, 10).await;
    let cake = app.product(&shop, 300, 4).await;

    let order = app.purchase(&shop, customer, &[(cake, 3), (tea, 2)]).await;
    assert_eq!(order.status, 201, "{order:?}");
    assert_has(
        &order.body,
        &["id", "customer_id", "total", "created_at", "items"],
    );
    assert_eq!(uuid_of(&order.body["customer_id"]), customer);
    assert_eq!(order.body["total"], 3 * 300 + 2 * 1_250);
    assert_utc_timestamp(&order.body["created_at"]);
    let items = order.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0],
        json!({ "product_id": cake, "quantity": 3, "unit_price": 300, "line_total": 900 }),
        "lines in request order"
    );
    assert_eq!(
        items[1],
        json!({ "product_id": tea, "quantity": 2, "unit_price": 1_250, "line_total": 2_500 })
    );

    assert_eq!(stock(&app, &shop, cake).await, 1);
    assert_eq!(stock(&app, &shop, tea).await, 8);
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], 3_400);
    assert_eq!(now["available_credit"], 100_000 - 3_400);

    let entries = ledger(&app, &shop, customer).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "purchase");
    assert_eq!(entries[0]["amount"], 3_400);
    assert_eq!(entries[0]["balance_after"], 3_400);
    assert_eq!(uuid_of(&entries[0]["order_id"]), order.id());

    // The order reads back the same, with no returns yet.
    let read = app
        .get(&format!("/v1/orders/{}", order.id()), &shop.key)
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["returns"], json!([]));
    for member in ["id", "customer_id", "total", "items"] {
        assert_eq!(read.body[member], order.body[member], "{member}");
    }
    let read_at =
        chrono::DateTime::parse_from_rfc3339(read.body["created_at"].as_str().expect("ts"))
            .expect("rfc3339");
    let created_at =
        chrono::DateTime::parse_from_rfc3339(order.body["created_at"].as_str().expect("ts"))
            .expect("rfc3339");
    assert_eq!(read_at, created_at);

    // Buying all that is left, and free goods, are fine.
    let free = app.product(&shop, 0, 1).await;
    let rest = app.purchase(&shop, customer, &[(cake, 1), (free, 1)]).await;
    assert_eq!(rest.status, 201, "{rest:?}");
    assert_eq!(rest.body["total"], 300);
    assert_eq!(rest.body["items"][1]["line_total"], 0);
    assert_eq!(stock(&app, &shop, cake).await, 0);
}

#[tokio::test]
async fn a_purchase_up_to_the_credit_limit_passes_and_one_unit_more_is_refused() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 100, 100).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 6)]).await.status,
        201
    );

    let over = app.purchase(&shop, customer, &[(product, 5)]).await;
    let body = problem(&over, 409, "credit_limit_exceeded");
    assert_eq!(body["credit_limit"], 1_000);
    assert_eq!(body["balance"], 600);
    assert_eq!(body["order_total"], 500);

    let exact = app.purchase(&shop, customer, &[(product, 4)]).await;
    assert_eq!(exact.status, 201, "{exact:?}");
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], 1_000);
    assert_eq!(now["available_credit"], 0);

    let zero_limit = app.customer(&shop, 0).await;
    let refused = app.purchase(&shop, zero_limit, &[(product, 1)]).await;
    let body = problem(&refused, 409, "credit_limit_exceeded");
    assert_eq!(body["credit_limit"], 0);
    assert_eq!(body["balance"], 0);
    assert_eq!(body["order_total"], 100);
}

#[tokio::test]
async fn the_same_product_on_two_lines_counts_as_their_sum() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000_000).await;
    let product = app.product(&shop, 10, 5).await;

    let refused = app
        .purchase(&shop, customer, &[(product, 3), (product, 3)])
        .await;
    let body = problem(&refused, 409, "insufficient_stock");
    assert_eq!(uuid_of(&body["product_id"]), product);
    assert_eq!(body["requested"], 6);
    assert_eq!(body["available"], 5);
    assert_eq!(stock(&app, &shop, product).await, 5);

    let other = app.product(&shop, 7, 9).await;
    let bought = app
        .purchase(&shop, customer, &[(product, 2), (other, 1), (product, 3)])
        .await;
    assert_eq!(bought.status, 201, "{bought:?}");
    assert_eq!(bought.body["total"], 5 * 10 + 7);
    let items = bought.body["items"].as_array().expect("items");
    let of_product: i64 = items
        .iter()
        .filter(|item| uuid_of(&item["product_id"]) == product)
        .map(|item| item["quantity"].as_i64().expect("quantity"))
        .sum();
    assert_eq!(of_product, 5);
    let line_totals: i64 = items
        .iter()
        .map(|item| item["line_total"].as_i64().expect("line_total"))
        .sum();
    assert_eq!(line_totals, 57, "total = sum of line totals");
    for item in items {
        assert_eq!(
            item["line_total"].as_i64(),
            item["quantity"]
                .as_i64()
                .zip(item["unit_price"].as_i64())
                .map(|(q, p)| q * p)
        );
    }
    assert_eq!(stock(&app, &shop, product).await, 0);
    assert_eq!(stock(&app, &shop, other).await, 8);
}

#[tokio::test]
async fn insufficient_stock_names_the_first_short_line_in_request_order_and_beats_credit() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100).await;
    let a = app.product(&shop, 1_000, 1).await;
    let b = app.product(&shop, 1_000, 2).await;
    let plenty = app.product(&shop, 1_000, 100).await;

    // Both lines short; the credit limit is blown too.
    let body = problem(
        &app.purchase(&shop, customer, &[(plenty, 1), (b, 3), (a, 2)])
            .await,
        409,
        "insufficient_stock",
    );
    assert_eq!(uuid_of(&body["product_id"]), b);
    assert_eq!(body["requested"], 3);
    assert_eq!(body["available"], 2);

    let body = problem(
        &app.purchase(&shop, customer, &[(a, 2), (b, 3)]).await,
        409,
        "insufficient_stock",
    );
    assert_eq!(uuid_of(&body["product_id"]), a);
    assert_eq!(body["requested"], 2);
    assert_eq!(body["available"], 1);

    // Stock fine, credit not.
    let body = problem(
        &app.purchase(&shop, customer, &[(a, 1)]).await,
        409,
        "credit_limit_exceeded",
    );
    assert_eq!(body["order_total"], 1_000);
    for product in [a, b, plenty] {
        assert!(stock(&app, &shop, product).await > 0);
    }
    assert_eq!(balance(&app, &shop, customer).await, 0);
}

#[tokio::test]
async fn a_refused_purchase_writes_nothing_at_all() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 5_000).await;
    let a = app.product(&shop, 1_000, 3).await;
    let b = app.product(&shop, 500, 10).await;
    let first = app.purchase(&shop, customer, &[(a, 1), (b, 2)]).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(pay(&app, &shop, customer, 500).await.status, 201);
    let before = everything(&app, &shop, customer, &[a, b]).await;

    type Lines = Vec<(Uuid, i64)>;
    let attempts: Vec<(Lines, u16, &str)> = vec![
        // b is fine and comes first; a is short.
        (vec![(b, 1), (a, 3)], 409, "insufficient_stock"),
        // Fine stock, over the limit (balance 1500 + 4000 > 5000).
        (vec![(b, 8)], 409, "credit_limit_exceeded"),
        // A valid first line, then an unknown product.
        (vec![(b, 1), (Uuid::new_v4(), 1)], 404, "not_found"),
        // A valid first line, then an invalid one.
        (vec![(b, 1), (a, 0)], 422, "validation_failed"),
    ];
    for (lines, status, code) in attempts {
        let reply = app.purchase(&shop, customer, &lines).await;
        problem(&reply, status, code);
        assert_eq!(
            everything(&app, &shop, customer, &[a, b]).await,
            before,
            "{code} changed something"
        );
    }
    let unknown_customer = app.purchase(&shop, Uuid::new_v4(), &[(b, 1)]).await;
    problem(&unknown_customer, 404, "not_found");
    // Another business's product or customer is just as unknown.
    let other = app.business("Other").await;
    let foreign_product = app.product(&other, 1, 10).await;
    let foreign_customer = app.customer(&other, 1_000).await;
    problem(
        &app.purchase(&shop, customer, &[(b, 1), (foreign_product, 1)])
            .await,
        404,
        "not_found",
    );
    problem(
        &app.purchase(&shop, foreign_customer, &[(b, 1)]).await,
        404,
        "not_found",
    );
    assert_eq!(everything(&app, &shop, customer, &[a, b]).await, before);
    assert_eq!(stock(&app, &other, foreign_product).await, 10);
    assert_eq!(balance(&app, &other, foreign_customer).await, 0);
}

#[tokio::test]
async fn purchase_requests_are_validated_line_by_line() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let product = app.product(&shop, 1, 1_000).await;

    assert_invalid(&app.purchase(&shop, customer, &[]).await, &["items"]);
    assert_invalid(
        &app.purchase(&shop, customer, &[(product, 0)]).await,
        &["items[0].quantity"],
    );
    assert_invalid(
        &app.purchase(
            &shop,
            customer,
            &[(product, 1), (product, -2), (product, 0)],
        )
        .await,
        &["items[1].quantity", "items[2].quantity"],
    );
    let too_many: Vec<(Uuid, i64)> = (0..101).map(|_| (product, 1)).collect();
    assert_invalid(&app.purchase(&shop, customer, &too_many).await, &["items"]);
    assert_eq!(stock(&app, &shop, product).await, 1_000);

    // 100 lines is the most, and they merge.
    let hundred: Vec<(Uuid, i64)> = (0..100).map(|_| (product, 1)).collect();
    let bought = app.purchase(&shop, customer, &hundred).await;
    assert_eq!(bought.status, 201, "{bought:?}");
    assert_eq!(bought.body["total"], 100);
    assert_eq!(stock(&app, &shop, product).await, 900);

    for body in [
        json!({ "items": [{ "product_id": product, "quantity": 1 }] }),
        json!({ "customer_id": customer }),
        json!({ "customer_id": "nope", "items": [{ "product_id": product, "quantity": 1 }] }),
        json!({ "customer_id": customer, "items": [{ "product_id": 5, "quantity": 1 }] }),
        json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": "1" }] }),
        json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1.5 }] }),
        json!({ "customer_id": customer, "items": [{ "product_id": product }] }),
        json!({ "customer_id": customer, "items": { "product_id": product, "quantity": 1 } }),
        json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1, "price": 0 }] }),
        json!({ "customer_id": customer, "items": [], "business_id": shop.id }),
    ] {
        let reply = app.post("/v1/purchases", &shop.key, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.code(), "malformed_request");
    }
    assert_eq!(stock(&app, &shop, product).await, 900);
}

#[tokio::test]
async fn purchase_checks_are_reported_in_the_contract_order() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10).await;
    let short = app.product(&shop, 100, 1).await;
    let unknown = Uuid::new_v4();

    // validation_failed before not_found (unknown customer and product).
    assert_invalid(
        &app.purchase(&shop, Uuid::new_v4(), &[(unknown, 0)]).await,
        &["items[0].quantity"],
    );
    assert_invalid(&app.purchase(&shop, Uuid::new_v4(), &[]).await, &["items"]);
    // not_found before insufficient_stock and credit_limit_exceeded.
    problem(
        &app.purchase(&shop, Uuid::new_v4(), &[(short, 5)]).await,
        404,
        "not_found",
    );
    problem(
        &app.purchase(&shop, customer, &[(short, 5), (unknown, 1)])
            .await,
        404,
        "not_found",
    );
    // insufficient_stock before credit_limit_exceeded.
    problem(
        &app.purchase(&shop, customer, &[(short, 5)]).await,
        409,
        "insufficient_stock",
    );
    problem(
        &app.purchase(&shop, customer, &[(short, 1)]).await,
        409,
        "credit_limit_exceeded",
    );
    // malformed_request before validation_failed; unauthorized before all.
    problem(
        &app.post(
            "/v1/purchases",
            &shop.key,
            json!({ "customer_id": "x", "items": [] }),
        )
        .await,
        400,
        "malformed_request",
    );
    let unauthenticated = app
        .request(
            Method::POST,
            "/v1/purchases",
            None,
            &[],
            Some(&json!({ "customer_id": "x", "items": [] })),
        )
        .await;
    problem(&unauthenticated, 401, "unauthorized");
    assert_eq!(stock(&app, &shop, short).await, 1);
}

#[tokio::test]
async fn totals_beyond_the_safe_range_are_422_and_never_500() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let dear = app.product(&shop, MAX_SAFE, 10).await;
    let half = app.product(&shop, MAX_SAFE / 2 + 1, 10).await;
    let scarce = app.product(&shop, MAX_SAFE, 1).await;
    let cheap = app.product(&shop, 1, 10).await;
    let before = everything(&app, &shop, customer, &[dear, half, scarce, cheap]).await;

    let reply = app.purchase(&shop, customer, &[(dear, 2)]).await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    let reply = app.purchase(&shop, customer, &[(half, 1), (half, 1)]).await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    let reply = app
        .purchase(&shop, customer, &[(half, 1), (cheap, 1), (dear, 1)])
        .await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    // Overflow is a validation failure, before the stock check.
    let reply = app.purchase(&shop, customer, &[(scarce, 2)]).await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    // Merged quantities beyond the safe range, and one beyond it alone.
    let reply = app
        .purchase(&shop, customer, &[(cheap, MAX_SAFE), (cheap, 1)])
        .await;
    assert_eq!(invalid_fields(&reply), ["items[1].quantity"]);
    let reply = app.purchase(&shop, customer, &[(cheap, i64::MAX)]).await;
    assert_eq!(invalid_fields(&reply), ["items[0].quantity"]);
    let reply = app.purchase(&shop, customer, &[(cheap, MAX_SAFE)]).await;
    problem(&reply, 409, "insufficient_stock");
    assert_eq!(
        everything(&app, &shop, customer, &[dear, half, scarce, cheap]).await,
        before
    );

    // Exactly 2^53 - 1 is a total, and fits a limit of 2^53 - 1.
    let max = app.purchase(&shop, customer, &[(dear, 1)]).await;
    assert_eq!(max.status, 201, "{max:?}");
    assert_eq!(max.body["total"], MAX_SAFE);
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], MAX_SAFE);
    assert_eq!(now["available_credit"], 0);
    let body = problem(
        &app.purchase(&shop, customer, &[(cheap, 1)]).await,
        409,
        "credit_limit_exceeded",
    );
    assert_eq!(body["balance"], MAX_SAFE);
    assert_eq!(body["order_total"], 1);
}

#[tokio::test]
async fn an_overflowing_total_is_a_validation_failure_before_unknown_ids() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let dear = app.product(&shop, MAX_SAFE, 10).await;
    let unknown = Uuid::new_v4();

    let reply = app.purchase(&shop, unknown, &[(dear, 2)]).await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    let reply = app
        .purchase(&shop, customer, &[(unknown, 1), (dear, 2)])
        .await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    // Without the overflow, the unknown ids are what is wrong.
    let reply = app.purchase(&shop, unknown, &[(dear, 1)]).await;
    problem(&reply, 404, "not_found");
    let reply = app
        .purchase(&shop, customer, &[(unknown, 1), (dear, 1)])
        .await;
    problem(&reply, 404, "not_found");
}

#[tokio::test]
async fn lifetime_purchases_beyond_i64_are_a_validation_failure_not_a_500() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let dear = app.product(&shop, MAX_SAFE, 10).await;
    // Purchases to date near i64::MAX with a zero balance: over a thousand
    // maximal purchases, each returned, would get there; planted in SQL
    // with the guards off instead.
    let client = app.sql().await;
    client
        .batch_execute("SET session_replication_role = replica")
        .await
        .expect("replica mode");
    client
        .execute(
            "INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount,
                                        balance_after, purchases_to_date)
             VALUES ($1, $2, $3, 1, 'payment', -1, 0, $4)",
            &[
                &shop.id,
                &Uuid::now_v7(),
                &customer,
                &(i64::MAX - MAX_SAFE / 2),
            ],
        )
        .await
        .expect("planted ledger head");
    // Within the limit, but the lifetime total would pass i64::MAX.
    let again = app.purchase(&shop, customer, &[(dear, 1)]).await;
    assert_eq!(invalid_fields(&again), ["items"]);
    assert_eq!(customer_body(&app, &shop, customer).await["balance"], 0);
}

// ---------------------------------------------------------------- orders

#[tokio::test]
async fn price_changes_never_touch_past_orders() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 100, 10).await;
    let old = app.purchase(&shop, customer, &[(product, 3)]).await;
    assert_eq!(old.status, 201, "{old:?}");

    let repriced = app
        .patch(
            &format!("/v1/products/{product}"),
            &shop.key,
            json!({ "price": 250 }),
        )
        .await;
    assert_eq!(repriced.status, 200, "{repriced:?}");

    let read = app
        .get(&format!("/v1/orders/{}", old.id()), &shop.key)
        .await;
    assert_eq!(read.body["total"], 300);
    assert_eq!(read.body["items"][0]["unit_price"], 100);
    assert_eq!(read.body["items"][0]["line_total"], 300);

    let new = app.purchase(&shop, customer, &[(product, 2)]).await;
    assert_eq!(new.status, 201, "{new:?}");
    assert_eq!(new.body["items"][0]["unit_price"], 250);
    assert_eq!(new.body["total"], 500);

    // A return from the old order is credited at the old price.
    let returned = give_back(&app, &shop, old.id(), &[(product, 2)]).await;
    assert_eq!(returned.status, 201, "{returned:?}");
    assert_eq!(returned.body["amount"], 200);
    assert_eq!(returned.body["items"][0]["unit_price"], 100);
    assert_eq!(balance(&app, &shop, customer).await, 300 + 500 - 200);
}

#[tokio::test]
async fn orders_are_read_by_id_and_listed_newest_first_per_customer() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let alice = app.customer(&shop, 100_000).await;
    let bob = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 10, 100).await;
    let mut alice_orders = Vec::new();
    let mut all_orders = Vec::new();
    for (customer, quantity) in [(alice, 1), (bob, 2), (alice, 3), (alice, 4), (bob, 5)] {
        let order = app.purchase(&shop, customer, &[(product, quantity)]).await;
        assert_eq!(order.status, 201, "{order:?}");
        if customer == alice {
            alice_orders.push(order.id());
        }
        all_orders.push(order.id());
    }
    alice_orders.reverse();
    all_orders.reverse();

    let list = app
        .get(&format!("/v1/orders?customer_id={alice}"), &shop.key)
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["next_cursor"], Value::Null);
    let rows = list.body["data"].as_array().expect("data");
    assert_eq!(ids(rows), alice_orders, "newest first, only alice's");
    for row in rows {
        assert_eq!(uuid_of(&row["customer_id"]), alice);
        assert_has(row, &["id", "customer_id", "total", "created_at", "items"]);
    }
    assert_eq!(rows[0]["total"], 40);

    let everyone = app.get("/v1/orders", &shop.key).await;
    assert_eq!(
        ids(everyone.body["data"].as_array().expect("data")),
        all_orders
    );

    // A customer with no orders, unknown or foreign, lists nothing.
    let foreign = app.customer(&other, 100).await;
    for customer in [app.customer(&shop, 5).await, Uuid::new_v4(), foreign] {
        let empty = app
            .get(&format!("/v1/orders?customer_id={customer}"), &shop.key)
            .await;
        assert_eq!(empty.status, 200, "{empty:?}");
        assert_eq!(empty.body, json!({ "data": [], "next_cursor": null }));
    }
    assert_invalid(
        &app.get("/v1/orders?customer_id=bob", &shop.key).await,
        &["customer_id"],
    );

    let other_product = app.product(&other, 1, 10).await;
    let other_customer = app.customer(&other, 100).await;
    let foreign_order = app
        .purchase(&other, other_customer, &[(other_product, 1)])
        .await;
    assert_eq!(foreign_order.status, 201);
    for id in [
        Uuid::new_v4().to_string(),
        foreign_order.id().to_string(),
        "123".to_owned(),
    ] {
        problem(
            &app.get(&format!("/v1/orders/{id}"), &shop.key).await,
            404,
            "not_found",
        );
    }
}

#[tokio::test]
async fn orders_page_newest_first_with_cursors() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000_000).await;
    let other = app.customer(&shop, 1_000_000).await;
    let product = app.product(&shop, 10, 100).await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let order = app.purchase(&shop, customer, &[(product, 1)]).await;
        assert_eq!(order.status, 201, "{order:?}");
        expected.push(order.id());
        if i % 3 == 0 {
            assert_eq!(
                app.purchase(&shop, other, &[(product, 1)]).await.status,
                201
            );
        }
    }
    expected.reverse();
    let path = format!("/v1/orders?customer_id={customer}");
    let (rows, sizes) = all_pages(&app, &shop.key, &path, 3).await;
    assert_eq!(sizes, [3, 3, 1]);
    assert_each_once_in_order(&ids(&rows), &expected);

    let (all, sizes) = all_pages(&app, &shop.key, "/v1/orders", 4).await;
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(all.len(), 10);
    let unique: HashSet<Uuid> = ids(&all).into_iter().collect();
    assert_eq!(unique.len(), 10);
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = all
        .iter()
        .map(|row| {
            chrono::DateTime::parse_from_rfc3339(row["created_at"].as_str().expect("ts"))
                .expect("rfc3339")
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
}

// -------------------------------------------------------------- payments

#[tokio::test]
async fn payments_reduce_the_balance_but_never_below_zero() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 1_000, 10).await;

    let nothing_owed = pay(&app, &shop, customer, 1).await;
    let body = problem(&nothing_owed, 409, "payment_exceeds_balance");
    assert_eq!(body["balance"], 0);
    assert_eq!(body["amount"], 1);

    assert_eq!(
        app.purchase(&shop, customer, &[(product, 3)]).await.status,
        201
    );
    let paid = pay(&app, &shop, customer, 1_200).await;
    assert_eq!(paid.status, 201, "{paid:?}");
    assert_has(
        &paid.body,
        &[
            "id",
            "kind",
            "amount",
            "balance_after",
            "order_id",
            "created_at",
        ],
    );
    uuid_of(&paid.body["id"]);
    assert_eq!(paid.body["kind"], "payment");
    assert_eq!(paid.body["amount"], -1_200);
    assert_eq!(paid.body["balance_after"], 1_800);
    assert_eq!(paid.body["order_id"], Value::Null);
    assert_utc_timestamp(&paid.body["created_at"]);

    let over = pay(&app, &shop, customer, 1_801).await;
    let body = problem(&over, 409, "payment_exceeds_balance");
    assert_eq!(body["balance"], 1_800);
    assert_eq!(body["amount"], 1_801);
    let huge = pay(&app, &shop, customer, MAX_SAFE).await;
    let body = problem(&huge, 409, "payment_exceeds_balance");
    assert_eq!(body["amount"], MAX_SAFE);
    assert_eq!(balance(&app, &shop, customer).await, 1_800);
    assert_eq!(ledger(&app, &shop, customer).await.len(), 2);

    let all = pay(&app, &shop, customer, 1_800).await;
    assert_eq!(all.status, 201, "{all:?}");
    assert_eq!(all.body["balance_after"], 0);
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], 0);
    assert_eq!(now["available_credit"], 10_000);
    // The ledger entry answered is the one listed.
    let entries = ledger(&app, &shop, customer).await;
    assert_eq!(entries[1]["id"], paid.body["id"]);
    assert_eq!(entries[1]["amount"], -1_200);
}

#[tokio::test]
async fn payment_requests_are_validated_before_the_customer_is_looked_up() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 1_000, 10).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 1)]).await.status,
        201
    );

    assert_invalid(&pay(&app, &shop, customer, 0).await, &["amount"]);
    assert_invalid(&pay(&app, &shop, customer, -5).await, &["amount"]);
    assert_invalid(&pay(&app, &shop, Uuid::new_v4(), 0).await, &["amount"]);
    problem(&pay(&app, &shop, Uuid::new_v4(), 5).await, 404, "not_found");
    let foreign = app.customer(&other, 100).await;
    problem(&pay(&app, &shop, foreign, 5).await, 404, "not_found");
    for body in [
        json!({ "customer_id": customer }),
        json!({ "amount": 5 }),
        json!({ "customer_id": customer, "amount": "5" }),
        json!({ "customer_id": customer, "amount": 5.5 }),
        json!({ "customer_id": "x", "amount": 5 }),
        json!({ "customer_id": customer, "amount": 5, "kind": "payment" }),
    ] {
        let reply = app.post("/v1/payments", &shop.key, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.code(), "malformed_request");
    }
    assert_eq!(balance(&app, &shop, customer).await, 1_000);
    assert_eq!(ledger(&app, &shop, customer).await.len(), 1);
}

// --------------------------------------------------------------- returns

#[tokio::test]
async fn a_return_puts_stock_back_and_credits_the_order_price() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let a = app.product(&shop, 200, 10).await;
    let b = app.product(&shop, 50, 10).await;
    let order = app.purchase(&shop, customer, &[(a, 3), (b, 2)]).await;
    assert_eq!(order.status, 201, "{order:?}");
    let order_id = order.id();

    let returned = give_back(&app, &shop, order_id, &[(a, 2)]).await;
    assert_eq!(returned.status, 201, "{returned:?}");
    assert_has(
        &returned.body,
        &["id", "order_id", "amount", "items", "created_at"],
    );
    uuid_of(&returned.body["id"]);
    assert_eq!(uuid_of(&returned.body["order_id"]), order_id);
    assert_eq!(returned.body["amount"], 400);
    assert_eq!(
        returned.body["items"],
        json!([{ "product_id": a, "quantity": 2, "unit_price": 200, "line_total": 400 }])
    );
    assert_utc_timestamp(&returned.body["created_at"]);
    assert_eq!(stock(&app, &shop, a).await, 9);
    assert_eq!(balance(&app, &shop, customer).await, 700 - 400);

    let entries = ledger(&app, &shop, customer).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["kind"], "return");
    assert_eq!(entries[1]["amount"], -400);
    assert_eq!(entries[1]["balance_after"], 300);
    assert_eq!(uuid_of(&entries[1]["order_id"]), order_id);

    // The order is unchanged, and lists its return.
    let read = app.get(&format!("/v1/orders/{order_id}"), &shop.key).await;
    assert_eq!(read.body["total"], 700);
    assert_eq!(read.body["items"], order.body["items"]);
    let returns = read.body["returns"].as_array().expect("returns");
    assert_eq!(returns.len(), 1);
    assert_eq!(returns[0]["id"], returned.body["id"]);
    assert_eq!(returns[0]["amount"], 400);
    assert_eq!(returns[0]["items"], returned.body["items"]);

    // Only what is left can come back; lines of one product add up.
    let body = problem(
        &give_back(&app, &shop, order_id, &[(b, 1), (a, 2)]).await,
        409,
        "return_exceeds_purchase",
    );
    assert_eq!(uuid_of(&body["product_id"]), a);
    assert_eq!(body["returnable"], 1);
    let body = problem(
        &give_back(&app, &shop, order_id, &[(a, 1), (b, 1), (a, 1)]).await,
        409,
        "return_exceeds_purchase",
    );
    assert_eq!(uuid_of(&body["product_id"]), a);
    assert_eq!(body["returnable"], 1);
    // A product the order does not have.
    let stranger = app.product(&shop, 1, 1).await;
    let body = problem(
        &give_back(&app, &shop, order_id, &[(stranger, 1)]).await,
        409,
        "return_exceeds_purchase",
    );
    assert_eq!(uuid_of(&body["product_id"]), stranger);
    assert_eq!(body["returnable"], 0);
    assert_eq!(stock(&app, &shop, a).await, 9, "refusals moved nothing");
    assert_eq!(stock(&app, &shop, b).await, 8);
    assert_eq!(balance(&app, &shop, customer).await, 300);

    let rest = give_back(&app, &shop, order_id, &[(b, 2), (a, 1)]).await;
    assert_eq!(rest.status, 201, "{rest:?}");
    assert_eq!(rest.body["amount"], 2 * 50 + 200);
    assert_eq!(stock(&app, &shop, a).await, 10);
    assert_eq!(stock(&app, &shop, b).await, 10);
    assert_eq!(balance(&app, &shop, customer).await, 0);
    let body = problem(
        &give_back(&app, &shop, order_id, &[(b, 1)]).await,
        409,
        "return_exceeds_purchase",
    );
    assert_eq!(body["returnable"], 0);
    let read = app.get(&format!("/v1/orders/{order_id}"), &shop.key).await;
    assert_eq!(read.body["returns"].as_array().expect("returns").len(), 2);
    assert_eq!(read.body["total"], 700);
}

#[tokio::test]
async fn return_requests_are_validated_and_unknown_orders_are_404() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 200, 10).await;
    let order = app.purchase(&shop, customer, &[(product, 3)]).await.id();
    let before = everything(&app, &shop, customer, &[product]).await;

    assert_invalid(&give_back(&app, &shop, order, &[]).await, &["items"]);
    assert_invalid(
        &give_back(&app, &shop, order, &[(product, 0)]).await,
        &["items[0].quantity"],
    );
    assert_invalid(
        &give_back(&app, &shop, order, &[(product, 1), (product, -1)]).await,
        &["items[1].quantity"],
    );
    let too_many: Vec<(Uuid, i64)> = (0..101).map(|_| (product, 1)).collect();
    assert_invalid(&give_back(&app, &shop, order, &too_many).await, &["items"]);
    assert_invalid(
        &give_back(&app, &shop, Uuid::new_v4(), &[(product, 0)]).await,
        &["items[0].quantity"],
    );
    let path = format!("/v1/orders/{order}/returns");
    for body in [
        json!({}),
        json!({ "items": [{ "product_id": product, "quantity": "1" }] }),
        json!({ "items": [{ "product_id": product, "quantity": 1 }], "amount": 5 }),
    ] {
        problem(
            &app.post(&path, &shop.key, body).await,
            400,
            "malformed_request",
        );
    }

    let other_customer = app.customer(&other, 100_000).await;
    let other_product = app.product(&other, 1, 10).await;
    let foreign = app
        .purchase(&other, other_customer, &[(other_product, 1)])
        .await
        .id();
    for id in [
        Uuid::new_v4().to_string(),
        foreign.to_string(),
        "x".to_owned(),
    ] {
        let reply = app
            .post(
                &format!("/v1/orders/{id}/returns"),
                &shop.key,
                json!({ "items": [{ "product_id": product, "quantity": 1 }] }),
            )
            .await;
        problem(&reply, 404, "not_found");
    }
    assert_eq!(everything(&app, &shop, customer, &[product]).await, before);
    assert_eq!(stock(&app, &other, other_product).await, 9);
}

// ---------------------------------------------------------------- ledger

#[tokio::test]
async fn the_ledger_lists_every_movement_oldest_first_as_a_balance_chain() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 100, 100).await;

    let empty = app
        .get(&format!("/v1/customers/{customer}/ledger"), &shop.key)
        .await;
    assert_eq!(empty.status, 200, "{empty:?}");
    assert_eq!(empty.body, json!({ "data": [], "next_cursor": null }));

    let first = app.purchase(&shop, customer, &[(product, 5)]).await;
    assert_eq!(pay(&app, &shop, customer, 200).await.status, 201);
    let returned = give_back(&app, &shop, first.id(), &[(product, 1)]).await;
    assert_eq!(returned.status, 201, "{returned:?}");
    let second = app.purchase(&shop, customer, &[(product, 2)]).await;
    assert_eq!(pay(&app, &shop, customer, 400).await.status, 201);

    let entries = ledger(&app, &shop, customer).await;
    let kinds: Vec<&str> = entries
        .iter()
        .map(|entry| entry["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        ["purchase", "payment", "return", "purchase", "payment"]
    );
    let amounts: Vec<i64> = entries
        .iter()
        .map(|entry| entry["amount"].as_i64().expect("amount"))
        .collect();
    assert_eq!(amounts, [500, -200, -100, 200, -400]);
    let mut running = 0;
    for entry in &entries {
        assert_has(
            entry,
            &[
                "id",
                "kind",
                "amount",
                "balance_after",
                "order_id",
                "created_at",
            ],
        );
        uuid_of(&entry["id"]);
        assert_utc_timestamp(&entry["created_at"]);
        running += entry["amount"].as_i64().expect("amount");
        assert_eq!(entry["balance_after"], running, "{entry}");
    }
    assert_eq!(uuid_of(&entries[0]["order_id"]), first.id());
    assert_eq!(entries[1]["order_id"], Value::Null);
    assert_eq!(uuid_of(&entries[2]["order_id"]), first.id());
    assert_eq!(uuid_of(&entries[3]["order_id"]), second.id());
    assert_eq!(entries[4]["order_id"], Value::Null);
    assert_eq!(balance(&app, &shop, customer).await, running);
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = entries
        .iter()
        .map(|row| {
            chrono::DateTime::parse_from_rfc3339(row["created_at"].as_str().expect("ts"))
                .expect("rfc3339")
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // Another customer's movements stay out of this ledger.
    let other = app.customer(&shop, 100_000).await;
    assert_eq!(
        app.purchase(&shop, other, &[(product, 1)]).await.status,
        201
    );
    assert_eq!(ledger(&app, &shop, customer).await, entries);
}

#[tokio::test]
async fn the_ledger_pages_oldest_first_with_cursors() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 1_000, 100).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 1)]).await.status,
        201
    );
    for _ in 0..6 {
        assert_eq!(pay(&app, &shop, customer, 100).await.status, 201);
    }
    let expected = ids(&ledger(&app, &shop, customer).await);
    assert_eq!(expected.len(), 7);
    let path = format!("/v1/customers/{customer}/ledger");
    let (rows, sizes) = all_pages(&app, &shop.key, &path, 3).await;
    assert_eq!(sizes, [3, 3, 1]);
    assert_each_once_in_order(&ids(&rows), &expected);
    let (rows, sizes) = all_pages(&app, &shop.key, &path, 7).await;
    assert_eq!(sizes, [7]);
    assert_eq!(ids(&rows), expected);
    let balances: Vec<i64> = rows
        .iter()
        .map(|row| row["balance_after"].as_i64().expect("balance_after"))
        .collect();
    assert_eq!(balances, [1_000, 900, 800, 700, 600, 500, 400]);
}

// ------------------------------------------------------------ pagination

#[tokio::test]
async fn customers_and_products_page_through_every_row_exactly_once() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let mut customers = Vec::new();
    let mut products = Vec::new();
    for i in 0..7 {
        customers.push(app.customer(&shop, i).await);
        products.push(app.product(&shop, i, i).await);
        app.customer(&other, i).await;
        app.product(&other, i, i).await;
    }
    for (path, expected) in [("/v1/customers", &customers), ("/v1/products", &products)] {
        let (rows, sizes) = all_pages(&app, &shop.key, path, 3).await;
        assert_eq!(sizes, [3, 3, 1], "{path}");
        assert_each_once_in_order(&ids(&rows), expected);
        let (rows, sizes) = all_pages(&app, &shop.key, path, 1).await;
        assert_eq!(sizes, [1; 7], "{path}");
        assert_eq!(&ids(&rows), expected);
        let (rows, sizes) = all_pages(&app, &shop.key, path, 200).await;
        assert_eq!(sizes, [7], "{path}");
        assert_eq!(&ids(&rows), expected);
        // A page that ends exactly at the last row says so with null, or
        // hands out a cursor to an empty page; either way nothing repeats.
        let (rows, _) = all_pages(&app, &shop.key, path, 7).await;
        assert_eq!(&ids(&rows), expected);
    }
}

/// Runs `count` requests made by `make`, ten at a time, each expecting 201.
async fn create_many<F, Fut>(count: usize, make: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    for chunk in (0..count).collect::<Vec<_>>().chunks(10) {
        let replies = futures::future::join_all(chunk.iter().map(|i| make(*i))).await;
        for reply in replies {
            assert_eq!(reply.status, 201, "{reply:?}");
        }
    }
}

#[tokio::test]
async fn every_list_defaults_to_fifty_rows() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let product = app.product(&shop, 1, 1_000).await;
    let key = shop.key.as_str();
    create_many(53, |i| {
        app.post(
            "/v1/customers",
            key,
            json!({ "name": format!("C{i}"), "credit_limit": 1 }),
        )
    })
    .await;
    create_many(53, |i| {
        app.post(
            "/v1/products",
            key,
            json!({ "name": format!("P{i}"), "price": 1, "stock": 1 }),
        )
    })
    .await;
    create_many(53, |_| app.post("/v1/api-keys", key, json!({}))).await;
    let line = [(product, 1)];
    create_many(54, |_| app.purchase(&shop, customer, &line)).await;

    let ledger_path = format!("/v1/customers/{customer}/ledger");
    for (path, total) in [
        ("/v1/customers", 54),
        ("/v1/products", 54),
        ("/v1/api-keys", 54),
        ("/v1/orders", 54),
        (ledger_path.as_str(), 54),
    ] {
        let first = app.get(path, key).await;
        assert_eq!(first.status, 200, "{first:?}");
        assert_eq!(
            first.body["data"].as_array().expect("data").len(),
            50,
            "{path}"
        );
        let cursor = first.body["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: a next page exists"));
        let second = app.get(&format!("{path}?cursor={cursor}"), key).await;
        assert_eq!(second.status, 200, "{second:?}");
        assert_eq!(
            second.body["data"].as_array().expect("data").len(),
            total - 50,
            "{path}"
        );
        assert_eq!(second.body["next_cursor"], Value::Null, "{path}");
        let mut seen = ids(first.body["data"].as_array().expect("data"));
        seen.extend(ids(second.body["data"].as_array().expect("data")));
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), total, "{path}");
    }
}

#[tokio::test]
async fn bad_limits_and_cursors_are_422_on_every_list() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 1, 10).await;
    for _ in 0..2 {
        assert_eq!(
            app.purchase(&shop, customer, &[(product, 1)]).await.status,
            201
        );
    }
    let ledger_path = format!("/v1/customers/{customer}/ledger");
    let lists = [
        "/v1/customers".to_owned(),
        "/v1/products".to_owned(),
        "/v1/orders".to_owned(),
        format!("/v1/orders?customer_id={customer}"),
        "/v1/api-keys".to_owned(),
        ledger_path.clone(),
    ];
    for list in &lists {
        let sep = if list.contains('?') { '&' } else { '?' };
        for limit in ["0", "201", "-1", "abc", "1.5", ""] {
            let reply = app
                .get(&format!("{list}{sep}limit={limit}"), &shop.key)
                .await;
            assert_eq!(invalid_fields(&reply), ["limit"], "{list} limit={limit}");
        }
        for cursor in ["garbage", "Zm9v", "!!!"] {
            let reply = app
                .get(&format!("{list}{sep}cursor={cursor}"), &shop.key)
                .await;
            assert_eq!(invalid_fields(&reply), ["cursor"], "{list} cursor={cursor}");
        }
        let both = app
            .get(&format!("{list}{sep}limit=0&cursor=garbage"), &shop.key)
            .await;
        assert_eq!(invalid_fields(&both), ["limit", "cursor"], "{list}");
        for limit in ["1", "200"] {
            let reply = app
                .get(&format!("{list}{sep}limit={limit}"), &shop.key)
                .await;
            assert_eq!(reply.status, 200, "{list} limit={limit}: {reply:?}");
        }
    }
    // A ledger cursor is no cursor of a created-ordered list, and back.
    let page = app.get(&format!("{ledger_path}?limit=1"), &shop.key).await;
    let seq_cursor = page.body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let page = app.get("/v1/orders?limit=1", &shop.key).await;
    let created_cursor = page.body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    assert_invalid(
        &app.get(&format!("/v1/orders?cursor={seq_cursor}"), &shop.key)
            .await,
        &["cursor"],
    );
    assert_invalid(
        &app.get(&format!("{ledger_path}?cursor={created_cursor}"), &shop.key)
            .await,
        &["cursor"],
    );
}

// ------------------------------------------------- request-level errors

#[tokio::test]
async fn bodies_that_are_not_json_objects_of_the_right_shape_are_400() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 1, 10).await;
    let valid = serde_json::to_vec(&json!({ "name": "C", "credit_limit": 1 })).expect("json");
    let key = Some(shop.key.as_str());

    let cases: Vec<(Option<&str>, Vec<u8>)> = vec![
        (Some("application/json"), b"{\"name\": \"C\", ".to_vec()),
        (Some("application/json"), b"not json".to_vec()),
        (Some("application/json"), b"null".to_vec()),
        (Some("application/json"), b"[]".to_vec()),
        (Some("application/json"), Vec::new()),
        (Some("application/json"), vec![0xff, 0xfe, 0x00]),
        (Some("text/plain"), valid.clone()),
        (
            Some("application/x-www-form-urlencoded"),
            b"name=C&credit_limit=1".to_vec(),
        ),
        (Some("application/xml"), valid.clone()),
        (None, valid.clone()),
        (None, Vec::new()),
    ];
    for (content_type, body) in cases {
        let reply = raw(
            &app,
            Method::POST,
            "/v1/customers",
            key,
            content_type,
            body.clone(),
        )
        .await;
        assert_eq!(
            reply.status,
            400,
            "{content_type:?} {:?}: {reply:?}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(reply.code(), "malformed_request");
    }
    // The same for every endpoint that takes a body.
    for (method, path) in [
        (Method::PATCH, format!("/v1/customers/{customer}")),
        (Method::POST, "/v1/products".to_owned()),
        (Method::PATCH, format!("/v1/products/{product}")),
        (
            Method::POST,
            format!("/v1/products/{product}/stock-adjustments"),
        ),
        (Method::POST, "/v1/purchases".to_owned()),
        (Method::POST, "/v1/payments".to_owned()),
        (
            Method::POST,
            format!("/v1/orders/{}/returns", Uuid::new_v4()),
        ),
    ] {
        for (content_type, body) in [
            (Some("application/json"), b"{oops".to_vec()),
            (Some("text/plain"), b"{}".to_vec()),
        ] {
            let reply = raw(&app, method.clone(), &path, key, content_type, body).await;
            assert_eq!(reply.status, 400, "{method} {path}: {reply:?}");
            assert_eq!(reply.code(), "malformed_request");
        }
    }
    let admin = raw(
        &app,
        Method::POST,
        "/v1/businesses",
        Some(ADMIN_TOKEN),
        Some("text/plain"),
        b"{\"name\":\"X\"}".to_vec(),
    )
    .await;
    problem(&admin, 400, "malformed_request");

    // JSON with a charset parameter is still JSON; nothing above was written.
    let charset = raw(
        &app,
        Method::POST,
        "/v1/customers",
        key,
        Some("application/json; charset=utf-8"),
        valid,
    )
    .await;
    assert_eq!(charset.status, 201, "{charset:?}");
    let list = app.get("/v1/customers", &shop.key).await;
    assert_eq!(list.body["data"].as_array().expect("data").len(), 2);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 1, 10).await;
    let padding = "x".repeat(1024 * 1024 + 1);
    let big_customer = json!({ "name": padding, "credit_limit": 1 });
    let reply = app.post("/v1/customers", &shop.key, big_customer).await;
    problem(&reply, 413, "payload_too_large");

    let line = json!({ "product_id": product, "quantity": 1 });
    let lines: Vec<Value> = (0..30_000).map(|_| line.clone()).collect();
    let big_purchase = json!({ "customer_id": customer, "items": lines });
    assert!(big_purchase.to_string().len() > 1024 * 1024);
    let reply = app.post("/v1/purchases", &shop.key, big_purchase).await;
    problem(&reply, 413, "payload_too_large");

    let list = app.get("/v1/customers", &shop.key).await;
    assert_eq!(list.body["data"].as_array().expect("data").len(), 1);
    assert_eq!(stock(&app, &shop, product).await, 10);
    assert_eq!(balance(&app, &shop, customer).await, 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_404_problems() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    for (method, path) in [
        (Method::GET, "/v1/nothing-here"),
        (Method::GET, "/nothing"),
        (Method::GET, "/v2/customers"),
        (Method::POST, "/v1/orders"),
        (Method::DELETE, "/v1/customers"),
        (Method::PUT, "/v1/products"),
        (Method::GET, "/v1/purchases"),
        (Method::GET, "/v1/reports/nope"),
    ] {
        let reply = app
            .request(method.clone(), path, Some(&shop.key), &[], None)
            .await;
        assert_eq!(reply.status, 404, "{method} {path}: {reply:?}");
        assert_eq!(reply.code(), "not_found");
        let anonymous = app.request(method.clone(), path, None, &[], None).await;
        assert_eq!(anonymous.status, 404, "{method} {path}: {anonymous:?}");
        assert_eq!(anonymous.code(), "not_found");
    }
}
