//! `/v1/api-keys`: issued and listed without their secret, revoked at once,
//! paged with cursors.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::support::{
    all_pages, assert_each_once_in_order, assert_utc_timestamp, ids, keys_of, problem, uuid_of,
};

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
