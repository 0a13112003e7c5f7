//! `/v1/orders`: read by id, listed newest first per customer, paged; past
//! orders keep their prices.

use std::collections::HashSet;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::support::{
    all_pages, assert_each_once_in_order, assert_has, assert_invalid, balance, give_back, ids,
    problem, uuid_of,
};

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
