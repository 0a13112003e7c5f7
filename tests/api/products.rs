//! `/v1/products`: created, read, listed and changed; their values
//! validated; unknown ids 404.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::support::{assert_invalid, assert_utc_timestamp, keys_of, problem, stock};

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
