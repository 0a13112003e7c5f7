//! `POST /v1/orders/{id}/returns`: stock back, the order's price credited;
//! validation, and unknown orders 404.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::support::{
    assert_has, assert_invalid, assert_utc_timestamp, balance, everything, give_back, ledger,
    problem, stock, uuid_of,
};

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
