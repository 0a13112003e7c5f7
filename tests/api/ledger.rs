//! `GET /v1/customers/{id}/ledger`: every movement oldest first as a
//! balance chain, paged with cursors.

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::support::{
    all_pages, assert_each_once_in_order, assert_has, assert_utc_timestamp, balance, give_back,
    ids, ledger, pay, uuid_of,
};

#[tokio::test]
async fn the_ledger_lists_every_movement_oldest_first_as_a_balance_chain() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 100, 100).await;

    let empty = app
        .get(&format!("/v1/customers/{customer}/ledger"), &shop.key)
        .await;
    assert_eq!(empty.status, 200, "{empty:?}");
    assert_eq!(empty.body, json!({ "data": [], "next_cursor": null }));

    let first = app.purchase(&shop, customer, &[(product, 5)]).await;
    assert_eq!(pay(&app, &shop, customer, 200).await.status, 201);
    let returned = give_back(&app, &shop, first.id(), &[(product, 1)]).await;
    assert_eq!(returned.status, 201, "{returned:?}");
    let second = app.purchase(&shop, customer, &[(product, 2)]).await;
    assert_eq!(pay(&app, &shop, customer, 400).await.status, 201);

    let entries = ledger(&app, &shop, customer).await;
    let kinds: Vec<&str> = entries
        .iter()
        .map(|entry| entry["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        ["purchase", "payment", "return", "purchase", "payment"]
    );
    let amounts: Vec<i64> = entries
        .iter()
        .map(|entry| entry["amount"].as_i64().expect("amount"))
        .collect();
    assert_eq!(amounts, [500, -200, -100, 200, -400]);
    let mut running = 0;
    for entry in &entries {
        assert_has(
            entry,
            &[
                "id",
                "kind",
                "amount",
                "balance_after",
                "order_id",
                "created_at",
            ],
        );
        uuid_of(&entry["id"]);
        assert_utc_timestamp(&entry["created_at"]);
        running += entry["amount"].as_i64().expect("amount");
        assert_eq!(entry["balance_after"], running, "{entry}");
    }
    assert_eq!(uuid_of(&entries[0]["order_id"]), first.id());
    assert_eq!(entries[1]["order_id"], Value::Null);
    assert_eq!(uuid_of(&entries[2]["order_id"]), first.id());
    assert_eq!(uuid_of(&entries[3]["order_id"]), second.id());
    assert_eq!(entries[4]["order_id"], Value::Null);
    assert_eq!(balance(&app, &shop, customer).await, running);
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = entries
        .iter()
        .map(|row| {
            chrono::DateTime::parse_from_rfc3339(row["created_at"].as_str().expect("ts"))
                .expect("rfc3339")
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // Another customer's movements stay out of this ledger.
    let other = app.customer(&shop, 100_000).await;
    assert_eq!(
        app.purchase(&shop, other, &[(product, 1)]).await.status,
        201
    );
    assert_eq!(ledger(&app, &shop, customer).await, entries);
}

#[tokio::test]
async fn the_ledger_pages_oldest_first_with_cursors() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 1_000, 100).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 1)]).await.status,
        201
    );
    for _ in 0..6 {
        assert_eq!(pay(&app, &shop, customer, 100).await.status, 201);
    }
    let expected = ids(&ledger(&app, &shop, customer).await);
    assert_eq!(expected.len(), 7);
    let path = format!("/v1/customers/{customer}/ledger");
    let (rows, sizes) = all_pages(&app, &shop.key, &path, 3).await;
    assert_eq!(sizes, [3, 3, 1]);
    assert_each_once_in_order(&ids(&rows), &expected);
    let (rows, sizes) = all_pages(&app, &shop.key, &path, 7).await;
    assert_eq!(sizes, [7]);
    assert_eq!(ids(&rows), expected);
    let balances: Vec<i64> = rows
        .iter()
        .map(|row| row["balance_after"].as_i64().expect("balance_after"))
        .collect();
    assert_eq!(balances, [1_000, 900, 800, 700, 600, 500, 400]);
}
