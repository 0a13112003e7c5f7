//! Hostile and odd input: every one is a 4xx with a problem body (the
//! harness fails any test on a 5xx other than 503), and what is accepted is
//! stored verbatim.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

/// Sends `body` as raw bytes with a JSON content type.
async fn raw(app: &TestApp, path: &str, key: &str, body: &str) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}{path}", app.base_url))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status < 500, "server error {status}: {body}");
    (status, body)
}

#[tokio::test]
async fn names_keep_unicode_and_sql_metacharacters_verbatim_and_refuse_nul() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    for name in [
        "Robert'); DROP TABLE customers; --",
        "Zoë 🧾 محمد 李",
        "%_\\ $1 ::uuid",
    ] {
        let created = app
            .post(
                "/v1/customers",
                &shop.key,
                json!({ "name": name, "credit_limit": 1 }),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        let read = app
            .get(&format!("/v1/customers/{}", created.id()), &shop.key)
            .await;
        assert_eq!(read.body["name"], name);
    }
    for bad in ["nul\u{0}inside", "bell\u{7}", "\u{0}"] {
        let refused = app
            .post(
                "/v1/products",
                &shop.key,
                json!({ "name": bad, "price": 1, "stock": 1 }),
            )
            .await;
        assert_eq!(refused.status, 422, "{bad:?}: {refused:?}");
        assert_eq!(refused.code(), "validation_failed");
    }
    let listed = app.get("/v1/customers", &shop.key).await;
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn malformed_json_shapes_are_400_problems() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases = [
        r#"{"name": "a", "name": "b", "credit_limit": 1}"#.to_owned(),
        r#"{"name": "a", "credit_limit": 12.5}"#.to_owned(),
        r#"{"name": "a", "credit_limit": "100"}"#.to_owned(),
        r#"{"name": "a", "credit_limit": 1e400}"#.to_owned(),
        r#"{"name": ["a"], "credit_limit": 1}"#.to_owned(),
        r#"{"name": "a", "credit_limit": 1, "business_id": "x"}"#.to_owned(),
        "\u{feff}{}".to_owned(),
        deep,
    ];
    for body in &cases {
        let (status, problem) = raw(&app, "/v1/customers", &shop.key, body).await;
        assert_eq!(status, 400, "{}: {problem}", &body[..body.len().min(60)]);
        assert_eq!(problem["code"], "malformed_request");
    }
    let customers = app.get("/v1/customers", &shop.key).await;
    assert_eq!(customers.body["data"], json!([]));
}

#[tokio::test]
async fn hostile_ids_cursors_and_quantities_are_refused_cleanly() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 10, 10).await;

    for id in [
        "not-a-uuid",
        "00000000-0000-0000-0000-00000000000g",
        "%27%3B--",
        "..%2F..%2Fetc",
    ] {
        let reply = app.get(&format!("/v1/customers/{id}"), &shop.key).await;
        assert_eq!(reply.status, 404, "{id}: {reply:?}");
        assert_eq!(reply.code(), "not_found");
    }
    for cursor in [
        "Zm9yZ2Vk",
        "c.1.not-a-uuid",
        "s.-1",
        "s.99999999999999999999",
        "%00",
        "c.9999999999999999999.00000000-0000-0000-0000-000000000000",
    ] {
        let reply = app
            .get(&format!("/v1/customers?cursor={cursor}"), &shop.key)
            .await;
        assert_eq!(reply.status, 422, "{cursor}: {reply:?}");
        assert_eq!(reply.code(), "validation_failed");
    }
    for quantity in [json!(0), json!(-1), json!(i64::MIN)] {
        let reply = app
            .post(
                "/v1/purchases",
                &shop.key,
                json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": quantity }] }),
            )
            .await;
        assert_eq!(reply.status, 422, "{quantity}: {reply:?}");
    }
    let (status, _) = raw(
        &app,
        "/v1/purchases",
        &shop.key,
        &format!(r#"{{"customer_id": "{customer}", "items": [{{"product_id": "{product}", "quantity": 1.0}}]}}"#),
    )
    .await;
    assert_eq!(status, 400);
    // Lines and bodies are JSON objects, not arrays of their fields.
    for body in [
        format!(r#"{{"customer_id": "{customer}", "items": [["{product}", 1]]}}"#),
        format!(r#"["{customer}", [{{"product_id": "{product}", "quantity": 1}}]]"#),
    ] {
        let (status, problem) = raw(&app, "/v1/purchases", &shop.key, &body).await;
        assert_eq!(status, 400, "{body}: {problem}");
    }
    let stock = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(stock.body["stock"], 10);
}

#[tokio::test]
async fn mangled_credentials_are_401_and_never_echoed() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let truncated = &shop.key[..shop.key.len() - 1];
    let (prefix, _) = shop.key.rsplit_once('_').expect("key has a secret part");
    let headers = [
        format!("Bearer {truncated}"),
        format!("bearer{}", shop.key),
        format!("Bearer {prefix}_"),
        format!("Bearer {prefix}_{}", "A".repeat(43)),
        "Bearer ".to_owned(),
        "Bearer ontab_".to_owned(),
        format!("Basic {}", shop.key),
        format!("Bearer {}", "x".repeat(10_000)),
    ];
    for header in &headers {
        let response = app
            .http
            .get(format!("{}/v1/customers", app.base_url))
            .header("authorization", header)
            .send()
            .await
            .expect("request sent");
        assert_eq!(
            response.status().as_u16(),
            401,
            "{}",
            &header[..header.len().min(40)]
        );
        let text = response.text().await.expect("body");
        assert!(
            !text.contains(&shop.key) && !text.contains(prefix),
            "{text}"
        );
    }
}

#[tokio::test]
async fn duplicate_keys_inside_lines_are_400_and_write_nothing() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 10, 10).await;
    // Last-one-wins would read quantity 5 from a line that also says 1.
    let body = format!(
        r#"{{"customer_id": "{customer}", "items": [{{"product_id": "{product}", "quantity": 1, "quantity": 5}}]}}"#
    );
    let (status, problem) = raw(&app, "/v1/purchases", &shop.key, &body).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "malformed_request");
    let read = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(read.body["stock"], 10);
}

#[tokio::test]
async fn two_authorization_headers_are_ambiguous_credentials() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    for (first, second) in [(&shop.key, &other.key), (&shop.key, &shop.key)] {
        let response = app
            .http
            .get(format!("{}/v1/customers", app.base_url))
            .header("authorization", format!("Bearer {first}"))
            .header("authorization", format!("Bearer {second}"))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.expect("problem");
        assert_eq!(body["code"], "unauthorized");
    }
}

#[tokio::test]
async fn forged_cursors_out_of_the_database_range_are_422_on_every_list() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let encode = |text: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    // Before 4713 BC (which PostgreSQL cannot hold), the ends of i64
    // microseconds, and after year 9999.
    let forged: Vec<String> = [
        -300_000_000_000_000_000_i64,
        i64::MIN,
        i64::MAX,
        9_000_000_000_000_000_000,
    ]
    .iter()
    .map(|micros| encode(format!("c.{micros}.{}", Uuid::nil())))
    .collect();
    for list in [
        "/v1/customers",
        "/v1/products",
        "/v1/orders",
        "/v1/api-keys",
    ] {
        for cursor in &forged {
            let reply = app.get(&format!("{list}?cursor={cursor}"), &shop.key).await;
            assert_eq!(reply.status, 422, "{list}: {reply:?}");
            assert_eq!(reply.code(), "validation_failed");
        }
    }
}

#[tokio::test]
async fn a_return_that_would_take_stock_past_2_pow_53_is_422_not_500() {
    let max_safe: i64 = 9_007_199_254_740_991;
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 1, 10).await;
    let order = app.purchase(&shop, customer, &[(product, 1)]).await;
    assert_eq!(order.status, 201, "{order:?}");
    let refill = app
        .post(
            &format!("/v1/products/{product}/stock-adjustments"),
            &shop.key,
            json!({ "delta": max_safe - 9, "reason": "full" }),
        )
        .await;
    assert_eq!(refill.status, 201, "{refill:?}");
    let back = app
        .post(
            &format!("/v1/orders/{}/returns", order.id()),
            &shop.key,
            json!({ "items": [{ "product_id": product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(back.status, 422, "{back:?}");
    assert_eq!(back.code(), "validation_failed");
    let read = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(read.body["stock"], max_safe);
    app.assert_audit_clean().await;
}
