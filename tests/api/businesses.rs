//! `POST /v1/businesses`: creation with the admin token, the currency
//! default, validation, and the API key shown once.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestApp};
use crate::support::{
    assert_has, assert_invalid, assert_utc_timestamp, ids, problem, raw, uuid_of,
};

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
    // `ontab_<id>_<secret>`, and the secret is base64url, which may itself
    // hold `_`: split off the first two parts only.
    let secret = key.splitn(3, '_').nth(2).expect("key has a secret part");
    assert!(secret.len() >= 43, "the whole 32-byte secret: {key}");
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
