//! Pagination on every list: each row exactly once, fifty rows by default,
//! bad limits and cursors 422.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp};
use crate::support::{
    MAX_SAFE, all_pages, assert_each_once_in_order, assert_invalid, ids, invalid_fields,
};

#[tokio::test]
async fn customers_and_products_page_through_every_row_exactly_once() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let mut customers = Vec::new();
    let mut products = Vec::new();
    for i in 0..7 {
        customers.push(app.customer(&shop, i).await);
        products.push(app.product(&shop, i, i).await);
        app.customer(&other, i).await;
        app.product(&other, i, i).await;
    }
    for (path, expected) in [("/v1/customers", &customers), ("/v1/products", &products)] {
        let (rows, sizes) = all_pages(&app, &shop.key, path, 3).await;
        assert_eq!(sizes, [3, 3, 1], "{path}");
        assert_each_once_in_order(&ids(&rows), expected);
        let (rows, sizes) = all_pages(&app, &shop.key, path, 1).await;
        assert_eq!(sizes, [1; 7], "{path}");
        assert_eq!(&ids(&rows), expected);
        let (rows, sizes) = all_pages(&app, &shop.key, path, 200).await;
        assert_eq!(sizes, [7], "{path}");
        assert_eq!(&ids(&rows), expected);
        // A page that ends exactly at the last row says so with null, or
        // hands out a cursor to an empty page; either way nothing repeats.
        let (rows, _) = all_pages(&app, &shop.key, path, 7).await;
        assert_eq!(&ids(&rows), expected);
    }
}

/// Runs `count` requests made by `make`, ten at a time, each expecting 201.
async fn create_many<F, Fut>(count: usize, make: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    for chunk in (0..count).collect::<Vec<_>>().chunks(10) {
        let replies = futures::future::join_all(chunk.iter().map(|i| make(*i))).await;
        for reply in replies {
            assert_eq!(reply.status, 201, "{reply:?}");
        }
    }
}

#[tokio::test]
async fn every_list_defaults_to_fifty_rows() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let product = app.product(&shop, 1, 1_000).await;
    let key = shop.key.as_str();
    create_many(53, |i| {
        app.post(
            "/v1/customers",
            key,
            json!({ "name": format!("C{i}"), "credit_limit": 1 }),
        )
    })
    .await;
    create_many(53, |i| {
        app.post(
            "/v1/products",
            key,
            json!({ "name": format!("P{i}"), "price": 1, "stock": 1 }),
        )
    })
    .await;
    create_many(53, |_| app.post("/v1/api-keys", key, json!({}))).await;
    let line = [(product, 1)];
    create_many(54, |_| app.purchase(&shop, customer, &line)).await;

    let ledger_path = format!("/v1/customers/{customer}/ledger");
    for (path, total) in [
        ("/v1/customers", 54),
        ("/v1/products", 54),
        ("/v1/api-keys", 54),
        ("/v1/orders", 54),
        (ledger_path.as_str(), 54),
    ] {
        let first = app.get(path, key).await;
        assert_eq!(first.status, 200, "{first:?}");
        assert_eq!(
            first.body["data"].as_array().expect("data").len(),
            50,
            "{path}"
        );
        let cursor = first.body["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: a next page exists"));
        let second = app.get(&format!("{path}?cursor={cursor}"), key).await;
        assert_eq!(second.status, 200, "{second:?}");
        assert_eq!(
            second.body["data"].as_array().expect("data").len(),
            total - 50,
            "{path}"
        );
        assert_eq!(second.body["next_cursor"], Value::Null, "{path}");
        let mut seen = ids(first.body["data"].as_array().expect("data"));
        seen.extend(ids(second.body["data"].as_array().expect("data")));
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), total, "{path}");
    }
}

#[tokio::test]
async fn bad_limits_and_cursors_are_422_on_every_list() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 1, 10).await;
    for _ in 0..2 {
        assert_eq!(
            app.purchase(&shop, customer, &[(product, 1)]).await.status,
            201
        );
    }
    let ledger_path = format!("/v1/customers/{customer}/ledger");
    let lists = [
        "/v1/customers".to_owned(),
        "/v1/products".to_owned(),
        "/v1/orders".to_owned(),
        format!("/v1/orders?customer_id={customer}"),
        "/v1/api-keys".to_owned(),
        ledger_path.clone(),
    ];
    for list in &lists {
        let sep = if list.contains('?') { '&' } else { '?' };
        for limit in ["0", "201", "-1", "abc", "1.5", ""] {
            let reply = app
                .get(&format!("{list}{sep}limit={limit}"), &shop.key)
                .await;
            assert_eq!(invalid_fields(&reply), ["limit"], "{list} limit={limit}");
        }
        for cursor in ["garbage", "Zm9v", "!!!"] {
            let reply = app
                .get(&format!("{list}{sep}cursor={cursor}"), &shop.key)
                .await;
            assert_eq!(invalid_fields(&reply), ["cursor"], "{list} cursor={cursor}");
        }
        let both = app
            .get(&format!("{list}{sep}limit=0&cursor=garbage"), &shop.key)
            .await;
        assert_eq!(invalid_fields(&both), ["limit", "cursor"], "{list}");
        for limit in ["1", "200"] {
            let reply = app
                .get(&format!("{list}{sep}limit={limit}"), &shop.key)
                .await;
            assert_eq!(reply.status, 200, "{list} limit={limit}: {reply:?}");
        }
    }
    // A ledger cursor is no cursor of a created-ordered list, and back.
    let page = app.get(&format!("{ledger_path}?limit=1"), &shop.key).await;
    let seq_cursor = page.body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let page = app.get("/v1/orders?limit=1", &shop.key).await;
    let created_cursor = page.body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    assert_invalid(
        &app.get(&format!("/v1/orders?cursor={seq_cursor}"), &shop.key)
            .await,
        &["cursor"],
    );
    assert_invalid(
        &app.get(&format!("{ledger_path}?cursor={created_cursor}"), &shop.key)
            .await,
        &["cursor"],
    );
}
