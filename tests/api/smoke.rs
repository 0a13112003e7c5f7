use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_business_sells_on_credit_and_the_ledger_follows() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 1_250, 10).await;

    let order = app.purchase(&shop, customer, &[(product, 2)]).await;
    assert_eq!(order.status, 201, "{order:?}");
    assert_eq!(order.body["total"], 2_500);

    let paid = app
        .post(
            "/v1/payments",
            &shop.key,
            json!({ "customer_id": customer, "amount": 500 }),
        )
        .await;
    assert_eq!(paid.status, 201, "{paid:?}");
    assert_eq!(paid.body["balance_after"], 2_000);

    let reread = app
        .get(&format!("/v1/customers/{customer}"), &shop.key)
        .await;
    assert_eq!(reread.body["balance"], 2_000);
    assert_eq!(reread.body["available_credit"], 8_000);
}
