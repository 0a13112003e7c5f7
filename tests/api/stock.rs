//! `POST /v1/products/{id}/stock-adjustments`: stock moves, never below
//! zero, and extreme deltas are refused without a server error.

use serde_json::json;

use crate::helpers::TestApp;
use crate::support::{
    MAX_SAFE, adjust, assert_has, assert_invalid, assert_utc_timestamp, keys_of, problem, stock,
    uuid_of,
};

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
