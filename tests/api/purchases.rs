//! `POST /v1/purchases`: an order at current prices that moves stock and
//! balance; credit and stock refusals, all or nothing, validation line by
//! line, the contract's order of checks, totals beyond the safe range.

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::support::{
    MAX_SAFE, assert_has, assert_invalid, assert_utc_timestamp, balance, customer_body, everything,
    invalid_fields, ledger, pay, problem, stock, uuid_of,
};

#[tokio::test]
async fn a_purchase_creates_an_order_at_current_prices_and_moves_stock_and_balance() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let tea = app.product(&shop, 1_250, 10).await;
    let cake = app.product(&shop, 300, 4).await;

    let order = app.purchase(&shop, customer, &[(cake, 3), (tea, 2)]).await;
    assert_eq!(order.status, 201, "{order:?}");
    assert_has(
        &order.body,
        &["id", "customer_id", "total", "created_at", "items"],
    );
    assert_eq!(uuid_of(&order.body["customer_id"]), customer);
    assert_eq!(order.body["total"], 3 * 300 + 2 * 1_250);
    assert_utc_timestamp(&order.body["created_at"]);
    let items = order.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0],
        json!({ "product_id": cake, "quantity": 3, "unit_price": 300, "line_total": 900 }),
        "lines in request order"
    );
    assert_eq!(
        items[1],
        json!({ "product_id": tea, "quantity": 2, "unit_price": 1_250, "line_total": 2_500 })
    );

    assert_eq!(stock(&app, &shop, cake).await, 1);
    assert_eq!(stock(&app, &shop, tea).await, 8);
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], 3_400);
    assert_eq!(now["available_credit"], 100_000 - 3_400);

    let entries = ledger(&app, &shop, customer).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "purchase");
    assert_eq!(entries[0]["amount"], 3_400);
    assert_eq!(entries[0]["balance_after"], 3_400);
    assert_eq!(uuid_of(&entries[0]["order_id"]), order.id());

    // The order reads back the same, with no returns yet.
    let read = app
        .get(&format!("/v1/orders/{}", order.id()), &shop.key)
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["returns"], json!([]));
    for member in ["id", "customer_id", "total", "items"] {
        assert_eq!(read.body[member], order.body[member], "{member}");
    }
    let read_at =
        chrono::DateTime::parse_from_rfc3339(read.body["created_at"].as_str().expect("ts"))
            .expect("rfc3339");
    let created_at =
        chrono::DateTime::parse_from_rfc3339(order.body["created_at"].as_str().expect("ts"))
            .expect("rfc3339");
    assert_eq!(read_at, created_at);

    // Buying all that is left, and free goods, are fine.
    let free = app.product(&shop, 0, 1).await;
    let rest = app.purchase(&shop, customer, &[(cake, 1), (free, 1)]).await;
    assert_eq!(rest.status, 201, "{rest:?}");
    assert_eq!(rest.body["total"], 300);
    assert_eq!(rest.body["items"][1]["line_total"], 0);
    assert_eq!(stock(&app, &shop, cake).await, 0);
}

#[tokio::test]
async fn a_purchase_up_to_the_credit_limit_passes_and_one_unit_more_is_refused() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 100, 100).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 6)]).await.status,
        201
    );

    let over = app.purchase(&shop, customer, &[(product, 5)]).await;
    let body = problem(&over, 409, "credit_limit_exceeded");
    assert_eq!(body["credit_limit"], 1_000);
    assert_eq!(body["balance"], 600);
    assert_eq!(body["order_total"], 500);

    let exact = app.purchase(&shop, customer, &[(product, 4)]).await;
    assert_eq!(exact.status, 201, "{exact:?}");
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], 1_000);
    assert_eq!(now["available_credit"], 0);

    let zero_limit = app.customer(&shop, 0).await;
    let refused = app.purchase(&shop, zero_limit, &[(product, 1)]).await;
    let body = problem(&refused, 409, "credit_limit_exceeded");
    assert_eq!(body["credit_limit"], 0);
    assert_eq!(body["balance"], 0);
    assert_eq!(body["order_total"], 100);
}

#[tokio::test]
async fn the_same_product_on_two_lines_counts_as_their_sum() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000_000).await;
    let product = app.product(&shop, 10, 5).await;

    let refused = app
        .purchase(&shop, customer, &[(product, 3), (product, 3)])
        .await;
    let body = problem(&refused, 409, "insufficient_stock");
    assert_eq!(uuid_of(&body["product_id"]), product);
    assert_eq!(body["requested"], 6);
    assert_eq!(body["available"], 5);
    assert_eq!(stock(&app, &shop, product).await, 5);

    let other = app.product(&shop, 7, 9).await;
    let bought = app
        .purchase(&shop, customer, &[(product, 2), (other, 1), (product, 3)])
        .await;
    assert_eq!(bought.status, 201, "{bought:?}");
    assert_eq!(bought.body["total"], 5 * 10 + 7);
    let items = bought.body["items"].as_array().expect("items");
    let of_product: i64 = items
        .iter()
        .filter(|item| uuid_of(&item["product_id"]) == product)
        .map(|item| item["quantity"].as_i64().expect("quantity"))
        .sum();
    assert_eq!(of_product, 5);
    let line_totals: i64 = items
        .iter()
        .map(|item| item["line_total"].as_i64().expect("line_total"))
        .sum();
    assert_eq!(line_totals, 57, "total = sum of line totals");
    for item in items {
        assert_eq!(
            item["line_total"].as_i64(),
            item["quantity"]
                .as_i64()
                .zip(item["unit_price"].as_i64())
                .map(|(q, p)| q * p)
        );
    }
    assert_eq!(stock(&app, &shop, product).await, 0);
    assert_eq!(stock(&app, &shop, other).await, 8);
}

#[tokio::test]
async fn insufficient_stock_names_the_first_short_line_in_request_order_and_beats_credit() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100).await;
    let a = app.product(&shop, 1_000, 1).await;
    let b = app.product(&shop, 1_000, 2).await;
    let plenty = app.product(&shop, 1_000, 100).await;

    // Both lines short; the credit limit is blown too.
    let body = problem(
        &app.purchase(&shop, customer, &[(plenty, 1), (b, 3), (a, 2)])
            .await,
        409,
        "insufficient_stock",
    );
    assert_eq!(uuid_of(&body["product_id"]), b);
    assert_eq!(body["requested"], 3);
    assert_eq!(body["available"], 2);

    let body = problem(
        &app.purchase(&shop, customer, &[(a, 2), (b, 3)]).await,
        409,
        "insufficient_stock",
    );
    assert_eq!(uuid_of(&body["product_id"]), a);
    assert_eq!(body["requested"], 2);
    assert_eq!(body["available"], 1);

    // Stock fine, credit not.
    let body = problem(
        &app.purchase(&shop, customer, &[(a, 1)]).await,
        409,
        "credit_limit_exceeded",
    );
    assert_eq!(body["order_total"], 1_000);
    for product in [a, b, plenty] {
        assert!(stock(&app, &shop, product).await > 0);
    }
    assert_eq!(balance(&app, &shop, customer).await, 0);
}

#[tokio::test]
async fn a_refused_purchase_writes_nothing_at_all() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 5_000).await;
    let a = app.product(&shop, 1_000, 3).await;
    let b = app.product(&shop, 500, 10).await;
    let first = app.purchase(&shop, customer, &[(a, 1), (b, 2)]).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(pay(&app, &shop, customer, 500).await.status, 201);
    let before = everything(&app, &shop, customer, &[a, b]).await;

    type Lines = Vec<(Uuid, i64)>;
    let attempts: Vec<(Lines, u16, &str)> = vec![
        // b is fine and comes first; a is short.
        (vec![(b, 1), (a, 3)], 409, "insufficient_stock"),
        // Fine stock, over the limit (balance 1500 + 4000 > 5000).
        (vec![(b, 8)], 409, "credit_limit_exceeded"),
        // A valid first line, then an unknown product.
        (vec![(b, 1), (Uuid::new_v4(), 1)], 404, "not_found"),
        // A valid first line, then an invalid one.
        (vec![(b, 1), (a, 0)], 422, "validation_failed"),
    ];
    for (lines, status, code) in attempts {
        let reply = app.purchase(&shop, customer, &lines).await;
        problem(&reply, status, code);
        assert_eq!(
            everything(&app, &shop, customer, &[a, b]).await,
            before,
            "{code} changed something"
        );
    }
    let unknown_customer = app.purchase(&shop, Uuid::new_v4(), &[(b, 1)]).await;
    problem(&unknown_customer, 404, "not_found");
    // Another business's product or customer is just as unknown.
    let other = app.business("Other").await;
    let foreign_product = app.product(&other, 1, 10).await;
    let foreign_customer = app.customer(&other, 1_000).await;
    problem(
        &app.purchase(&shop, customer, &[(b, 1), (foreign_product, 1)])
            .await,
        404,
        "not_found",
    );
    problem(
        &app.purchase(&shop, foreign_customer, &[(b, 1)]).await,
        404,
        "not_found",
    );
    assert_eq!(everything(&app, &shop, customer, &[a, b]).await, before);
    assert_eq!(stock(&app, &other, foreign_product).await, 10);
    assert_eq!(balance(&app, &other, foreign_customer).await, 0);
}

#[tokio::test]
async fn purchase_requests_are_validated_line_by_line() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let product = app.product(&shop, 1, 1_000).await;

    assert_invalid(&app.purchase(&shop, customer, &[]).await, &["items"]);
    assert_invalid(
        &app.purchase(&shop, customer, &[(product, 0)]).await,
        &["items[0].quantity"],
    );
    assert_invalid(
        &app.purchase(
            &shop,
            customer,
            &[(product, 1), (product, -2), (product, 0)],
        )
        .await,
        &["items[1].quantity", "items[2].quantity"],
    );
    let too_many: Vec<(Uuid, i64)> = (0..101).map(|_| (product, 1)).collect();
    assert_invalid(&app.purchase(&shop, customer, &too_many).await, &["items"]);
    assert_eq!(stock(&app, &shop, product).await, 1_000);

    // 100 lines is the most, and they merge.
    let hundred: Vec<(Uuid, i64)> = (0..100).map(|_| (product, 1)).collect();
    let bought = app.purchase(&shop, customer, &hundred).await;
    assert_eq!(bought.status, 201, "{bought:?}");
    assert_eq!(bought.body["total"], 100);
    assert_eq!(stock(&app, &shop, product).await, 900);

    for body in [
        json!({ "items": [{ "product_id": product, "quantity": 1 }] }),
        json!({ "customer_id": customer }),
        json!({ "customer_id": "nope", "items": [{ "product_id": product, "quantity": 1 }] }),
        json!({ "customer_id": customer, "items": [{ "product_id": 5, "quantity": 1 }] }),
        json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": "1" }] }),
        json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1.5 }] }),
        json!({ "customer_id": customer, "items": [{ "product_id": product }] }),
        json!({ "customer_id": customer, "items": { "product_id": product, "quantity": 1 } }),
        json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1, "price": 0 }] }),
        json!({ "customer_id": customer, "items": [], "business_id": shop.id }),
    ] {
        let reply = app.post("/v1/purchases", &shop.key, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.code(), "malformed_request");
    }
    assert_eq!(stock(&app, &shop, product).await, 900);
}

#[tokio::test]
async fn purchase_checks_are_reported_in_the_contract_order() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10).await;
    let short = app.product(&shop, 100, 1).await;
    let unknown = Uuid::new_v4();

    // validation_failed before not_found (unknown customer and product).
    assert_invalid(
        &app.purchase(&shop, Uuid::new_v4(), &[(unknown, 0)]).await,
        &["items[0].quantity"],
    );
    assert_invalid(&app.purchase(&shop, Uuid::new_v4(), &[]).await, &["items"]);
    // not_found before insufficient_stock and credit_limit_exceeded.
    problem(
        &app.purchase(&shop, Uuid::new_v4(), &[(short, 5)]).await,
        404,
        "not_found",
    );
    problem(
        &app.purchase(&shop, customer, &[(short, 5), (unknown, 1)])
            .await,
        404,
        "not_found",
    );
    // insufficient_stock before credit_limit_exceeded.
    problem(
        &app.purchase(&shop, customer, &[(short, 5)]).await,
        409,
        "insufficient_stock",
    );
    problem(
        &app.purchase(&shop, customer, &[(short, 1)]).await,
        409,
        "credit_limit_exceeded",
    );
    // malformed_request before validation_failed; unauthorized before all.
    problem(
        &app.post(
            "/v1/purchases",
            &shop.key,
            json!({ "customer_id": "x", "items": [] }),
        )
        .await,
        400,
        "malformed_request",
    );
    let unauthenticated = app
        .request(
            Method::POST,
            "/v1/purchases",
            None,
            &[],
            Some(&json!({ "customer_id": "x", "items": [] })),
        )
        .await;
    problem(&unauthenticated, 401, "unauthorized");
    assert_eq!(stock(&app, &shop, short).await, 1);
}

#[tokio::test]
async fn totals_beyond_the_safe_range_are_422_and_never_500() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let dear = app.product(&shop, MAX_SAFE, 10).await;
    let half = app.product(&shop, MAX_SAFE / 2 + 1, 10).await;
    let scarce = app.product(&shop, MAX_SAFE, 1).await;
    let cheap = app.product(&shop, 1, 10).await;
    let before = everything(&app, &shop, customer, &[dear, half, scarce, cheap]).await;

    let reply = app.purchase(&shop, customer, &[(dear, 2)]).await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    let reply = app.purchase(&shop, customer, &[(half, 1), (half, 1)]).await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    let reply = app
        .purchase(&shop, customer, &[(half, 1), (cheap, 1), (dear, 1)])
        .await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    // Overflow is a validation failure, before the stock check.
    let reply = app.purchase(&shop, customer, &[(scarce, 2)]).await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    // Merged quantities beyond the safe range, and one beyond it alone.
    let reply = app
        .purchase(&shop, customer, &[(cheap, MAX_SAFE), (cheap, 1)])
        .await;
    assert_eq!(invalid_fields(&reply), ["items[1].quantity"]);
    let reply = app.purchase(&shop, customer, &[(cheap, i64::MAX)]).await;
    assert_eq!(invalid_fields(&reply), ["items[0].quantity"]);
    let reply = app.purchase(&shop, customer, &[(cheap, MAX_SAFE)]).await;
    problem(&reply, 409, "insufficient_stock");
    assert_eq!(
        everything(&app, &shop, customer, &[dear, half, scarce, cheap]).await,
        before
    );

    // Exactly 2^53 - 1 is a total, and fits a limit of 2^53 - 1.
    let max = app.purchase(&shop, customer, &[(dear, 1)]).await;
    assert_eq!(max.status, 201, "{max:?}");
    assert_eq!(max.body["total"], MAX_SAFE);
    let now = customer_body(&app, &shop, customer).await;
    assert_eq!(now["balance"], MAX_SAFE);
    assert_eq!(now["available_credit"], 0);
    let body = problem(
        &app.purchase(&shop, customer, &[(cheap, 1)]).await,
        409,
        "credit_limit_exceeded",
    );
    assert_eq!(body["balance"], MAX_SAFE);
    assert_eq!(body["order_total"], 1);
}

#[tokio::test]
async fn an_overflowing_total_is_a_validation_failure_before_unknown_ids() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let dear = app.product(&shop, MAX_SAFE, 10).await;
    let unknown = Uuid::new_v4();

    let reply = app.purchase(&shop, unknown, &[(dear, 2)]).await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    let reply = app
        .purchase(&shop, customer, &[(unknown, 1), (dear, 2)])
        .await;
    assert_eq!(invalid_fields(&reply), ["items"]);
    // Without the overflow, the unknown ids are what is wrong.
    let reply = app.purchase(&shop, unknown, &[(dear, 1)]).await;
    problem(&reply, 404, "not_found");
    let reply = app
        .purchase(&shop, customer, &[(unknown, 1), (dear, 1)])
        .await;
    problem(&reply, 404, "not_found");
}

#[tokio::test]
async fn lifetime_purchases_beyond_i64_are_a_validation_failure_not_a_500() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, MAX_SAFE).await;
    let dear = app.product(&shop, MAX_SAFE, 10).await;
    // Purchases to date near i64::MAX with a zero balance: over a thousand
    // maximal purchases, each returned, would get there; planted in SQL
    // with the guards off instead.
    crate::helpers::plant_lifetime_purchases(&app, &shop, customer, i64::MAX - MAX_SAFE / 2).await;
    // Within the limit, but the lifetime total would pass i64::MAX.
    let again = app.purchase(&shop, customer, &[(dear, 1)]).await;
    assert_eq!(invalid_fields(&again), ["items"]);
    assert_eq!(customer_body(&app, &shop, customer).await["balance"], 0);
}
