//! Credentials: missing, malformed, unknown and foreign keys are 401
//! problems on every tenant endpoint.

use reqwest::Method;
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, TestApp};
use crate::support::{problem, raw};

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
