//! `POST /v1/payments`: the balance goes down but never below zero;
//! validation before the customer is looked up.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::support::{
    MAX_SAFE, assert_has, assert_invalid, assert_utc_timestamp, balance, customer_body, ledger,
    pay, problem, uuid_of,
};

#[tokio::test]
async fn payments_reduce_the_balance_but_never_below_zero() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 1_000, 10).await;

    let nothing_owed = pay(&app, &shop, customer, 1).await;
    let body = problem(&nothing_owed, 409, "payment_exceeds_balance");
    assert_eq!(body["balance"], 0);
    assert_eq!(body["amount"], 1);

    assert_eq!(
        app.purchase(&shop, customer, &[(product, 3)]).await.status,
        201
    );
    let paid = pay(&app, &shop, customer, 1_200).await;
    assert_eq!(paid.status, 201, "{paid:?}");
    assert_has(
        &paid.body,
        &[
            "id",
            "kind",
            "amount",
            "balance_after",
            "order_id",
            "created_at",
        ],
    );
    uuid_of(&paid.body["id"]);
    assert_eq!(paid.body["kind"], "payment");
    assert_eq!(paid.body["amount"], -1_200);
    assert_eq!(paid.body["balance_after"], 1_800);
    assert_eq!(paid.body["order_id"], Value::Null);
    assert_utc_timestamp(&paid.body["created_at"]);

    let over = pay(&app, &shop, customer, 1_801).await;
    let body = problem(&over, 409, "payment_exceeds_balance");
    assert_eq!(body["balance"], 1_800);
    assert_eq!(body["amount"], 1_801);
    let huge = pay(&app, &shop, customer, MAX_SAFE).await;
    let body = problem(&huge, 409, "payment_exceeds_balance");
    assert_eq!(body["amount"], MAX_SAFE);
    assert_eq!(balance(&app, &shop, customer).await, 1_800);
    assert_eq!(ledger(&app, &shop, customer).await.len(), 2);

    let all = pay(&app, &shop, customer, 1_800).await;
    assert_eq!(all.status, 201, "{all:?}");
    assert_eq!(all.body["balance_after"], 0);
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], 0);
    assert_eq!(now["available_credit"], 10_000);
    // The ledger entry answered is the one listed.
    let entries = ledger(&app, &shop, customer).await;
    assert_eq!(entries[1]["id"], paid.body["id"]);
    assert_eq!(entries[1]["amount"], -1_200);
}

#[tokio::test]
async fn payment_requests_are_validated_before_the_customer_is_looked_up() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 1_000, 10).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 1)]).await.status,
        201
    );

    assert_invalid(&pay(&app, &shop, customer, 0).await, &["amount"]);
    assert_invalid(&pay(&app, &shop, customer, -5).await, &["amount"]);
    assert_invalid(&pay(&app, &shop, Uuid::new_v4(), 0).await, &["amount"]);
    problem(&pay(&app, &shop, Uuid::new_v4(), 5).await, 404, "not_found");
    let foreign = app.customer(&other, 100).await;
    problem(&pay(&app, &shop, foreign, 5).await, 404, "not_found");
    for body in [
        json!({ "customer_id": customer }),
        json!({ "amount": 5 }),
        json!({ "customer_id": customer, "amount": "5" }),
        json!({ "customer_id": customer, "amount": 5.5 }),
        json!({ "customer_id": "x", "amount": 5 }),
        json!({ "customer_id": customer, "amount": 5, "kind": "payment" }),
    ] {
        let reply = app.post("/v1/payments", &shop.key, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.code(), "malformed_request");
    }
    assert_eq!(balance(&app, &shop, customer).await, 1_000);
    assert_eq!(ledger(&app, &shop, customer).await.len(), 1);
}
