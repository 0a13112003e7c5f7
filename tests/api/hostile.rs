//! Hostile and odd input: every one is a 4xx with a problem body (the
//! harness fails any test on a 5xx other than 503), and what is accepted is
//! stored verbatim.

use serde_json::{Value, json};

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
        r#"{"name": "a", "credit_limit": 9223372036854775808}"#.to_owned(),
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
