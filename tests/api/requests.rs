//! Request-level errors: bodies that are not JSON objects of the right shape
//! (400), a body over one mebibyte (413), unknown routes and methods (404).

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, TestApp};
use crate::support::{balance, problem, raw, stock};

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
