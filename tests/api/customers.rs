//! `/v1/customers`: created, read, listed and changed; their values
//! validated; unknown ids 404 after validation.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::support::{
    MAX_SAFE, assert_invalid, assert_utc_timestamp, customer_body, give_back, keys_of,
    named_customer, pay, problem, uuid_of,
};

#[tokio::test]
async fn customers_are_created_read_listed_and_changed() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let created = named_customer(&app, &shop, "  Ada  ", 5_000).await;
    assert_eq!(
        keys_of(&created),
        [
            "available_credit",
            "balance",
            "created_at",
            "credit_limit",
            "held",
            "id",
            "name",
            "payment_terms_days",
            "status"
        ]
    );
    assert_eq!(created["name"], "Ada");
    assert_eq!(created["status"], "active");
    assert_eq!(created["payment_terms_days"], 30);
    assert_eq!(created["credit_limit"], 5_000);
    assert_eq!(created["balance"], 0);
    assert_eq!(created["available_credit"], 5_000);
    assert_utc_timestamp(&created["created_at"]);
    let id = uuid_of(&created["id"]);

    assert_eq!(customer_body(&app, &shop, id).await, created);

    let zero = named_customer(&app, &shop, "Zero", 0).await;
    assert_eq!(zero["available_credit"], 0);

    let list = app.get("/v1/customers", &shop.key).await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["next_cursor"], Value::Null);
    assert_eq!(list.body["data"], json!([created, zero]), "oldest first");

    let renamed = app
        .patch(
            &format!("/v1/customers/{id}"),
            &shop.key,
            json!({ "name": "Ada L." }),
        )
        .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    assert_eq!(renamed.body["name"], "Ada L.");
    assert_eq!(renamed.body["credit_limit"], 5_000);

    let raised = app
        .patch(
            &format!("/v1/customers/{id}"),
            &shop.key,
            json!({ "credit_limit": 7_000 }),
        )
        .await;
    assert_eq!(raised.status, 200, "{raised:?}");
    assert_eq!(raised.body["name"], "Ada L.");
    assert_eq!(raised.body["credit_limit"], 7_000);
    assert_eq!(raised.body["available_credit"], 7_000);

    let both = app
        .patch(
            &format!("/v1/customers/{id}"),
            &shop.key,
            json!({ "name": "Ada", "credit_limit": 0 }),
        )
        .await;
    assert_eq!(both.status, 200, "{both:?}");
    let nothing = app
        .patch(&format!("/v1/customers/{id}"), &shop.key, json!({}))
        .await;
    assert_eq!(nothing.status, 200, "{nothing:?}");
    assert_eq!(nothing.body, both.body);
    assert_eq!(nothing.body["created_at"], created["created_at"]);
    assert_eq!(customer_body(&app, &shop, id).await, both.body);
}

#[tokio::test]
async fn a_limit_lowered_below_the_balance_blocks_new_purchases_only() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 1_000, 20).await;
    let order = app.purchase(&shop, customer, &[(product, 6)]).await;
    assert_eq!(order.status, 201, "{order:?}");

    let lowered = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &shop.key,
            json!({ "credit_limit": 5_000 }),
        )
        .await;
    assert_eq!(lowered.status, 200, "{lowered:?}");
    assert_eq!(lowered.body["credit_limit"], 5_000);
    assert_eq!(lowered.body["balance"], 6_000);
    assert_eq!(lowered.body["available_credit"], 0, "never negative");

    let refused = app.purchase(&shop, customer, &[(product, 1)]).await;
    let body = problem(&refused, 409, "credit_limit_exceeded");
    assert_eq!(body["credit_limit"], 5_000);
    assert_eq!(body["balance"], 6_000);
    assert_eq!(body["order_total"], 1_000);

    // Payments and returns still go through.
    assert_eq!(pay(&app, &shop, customer, 500).await.status, 201);
    let returned = give_back(&app, &shop, order.id(), &[(product, 1)]).await;
    assert_eq!(returned.status, 201, "{returned:?}");
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], 4_500);
    assert_eq!(now["available_credit"], 500);
}

#[tokio::test]
async fn customer_values_are_validated() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let create = |body: Value| {
        let (app, key) = (&app, shop.key.clone());
        async move { app.post("/v1/customers", &key, body).await }
    };
    assert_invalid(
        &create(json!({ "name": "", "credit_limit": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": "   ", "credit_limit": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": "é".repeat(201), "credit_limit": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": "A\u{0}B", "credit_limit": 1 })).await,
        &["name"],
    );
    assert_invalid(
        &create(json!({ "name": "A", "credit_limit": -1 })).await,
        &["credit_limit"],
    );
    assert_invalid(
        &create(json!({ "name": "", "credit_limit": -1 })).await,
        &["name", "credit_limit"],
    );
    let longest = create(json!({ "name": "é".repeat(200), "credit_limit": 0 })).await;
    assert_eq!(longest.status, 201, "{longest:?}");
    // Beyond 2^53 - 1 a JavaScript client would read another number: an
    // invalid value (422), whether or not it fits in i64.
    for beyond in [
        json!(MAX_SAFE + 1),
        json!(i64::MAX),
        json!(9_223_372_036_854_775_808_u64),
        json!(u64::MAX),
    ] {
        assert_invalid(
            &create(json!({ "name": "A", "credit_limit": beyond })).await,
            &["credit_limit"],
        );
    }
    let largest = create(json!({ "name": "A", "credit_limit": MAX_SAFE })).await;
    assert_eq!(largest.status, 201, "{largest:?}");
    assert_eq!(largest.body["available_credit"], MAX_SAFE);

    for body in [
        json!({ "name": "A" }),
        json!({ "credit_limit": 1 }),
        json!({ "name": "A", "credit_limit": "100" }),
        json!({ "name": "A", "credit_limit": 1.5 }),
        json!({ "name": "A", "credit_limit": null }),
        json!({ "name": 7, "credit_limit": 1 }),
        json!({ "name": "A", "credit_limit": 1, "balance": 5 }),
        json!([{ "name": "A", "credit_limit": 1 }]),
    ] {
        let reply = create(body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.code(), "malformed_request");
    }

    let id = app.customer(&shop, 100).await;
    let path = format!("/v1/customers/{id}");
    assert_invalid(
        &app.patch(&path, &shop.key, json!({ "name": "" })).await,
        &["name"],
    );
    assert_invalid(
        &app.patch(&path, &shop.key, json!({ "credit_limit": -5 }))
            .await,
        &["credit_limit"],
    );
    problem(
        &app.patch(&path, &shop.key, json!({ "credit_limit": "5" }))
            .await,
        400,
        "malformed_request",
    );
    problem(
        &app.patch(&path, &shop.key, json!({ "balance": 0 })).await,
        400,
        "malformed_request",
    );
    assert_eq!(customer_body(&app, &shop, id).await["credit_limit"], 100);
}

#[tokio::test]
async fn unknown_customers_are_404_and_validation_comes_first() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let other = app.business("Other").await;
    let foreign = app.customer(&other, 100).await;
    for id in [
        Uuid::new_v4().to_string(),
        foreign.to_string(),
        "42".to_owned(),
    ] {
        let path = format!("/v1/customers/{id}");
        problem(&app.get(&path, &shop.key).await, 404, "not_found");
        problem(
            &app.patch(&path, &shop.key, json!({ "name": "X" })).await,
            404,
            "not_found",
        );
        problem(
            &app.get(&format!("{path}/ledger"), &shop.key).await,
            404,
            "not_found",
        );
        // Invalid values are reported before the unknown id.
        assert_invalid(
            &app.patch(&path, &shop.key, json!({ "name": "" })).await,
            &["name"],
        );
        assert_invalid(
            &app.get(&format!("{path}/ledger?limit=0"), &shop.key).await,
            &["limit"],
        );
    }
    assert_eq!(
        customer_body(&app, &other, foreign).await["name"],
        "Customer"
    );
}
