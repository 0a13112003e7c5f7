//! `ontab audit` passes on clean data and finds each kind of corruption,
//! injected with triggers and foreign keys disabled
//! (session_replication_role = replica) as the superuser.

use serde_json::json;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::helpers::{Business, TestApp};

/// A business with every kind of movement: purchases, a payment, a return,
/// a stock adjustment and a lowered credit limit.
async fn busy_shop(app: &TestApp, name: &str) -> (Business, Uuid, Uuid, Uuid) {
    let shop = app.business(name).await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 1_000, 50).await;
    let other = app.product(&shop, 250, 50).await;
    let order = app
        .purchase(&shop, customer, &[(product, 3), (other, 4)])
        .await;
    assert_eq!(order.status, 201, "{order:?}");
    let order_id = order.id();
    let second = app.purchase(&shop, customer, &[(other, 2)]).await;
    assert_eq!(second.status, 201, "{second:?}");
    let paid = app
        .post(
            "/v1/payments",
            &shop.key,
            json!({ "customer_id": customer, "amount": 1_500 }),
        )
        .await;
    assert_eq!(paid.status, 201, "{paid:?}");
    let returned = app
        .post(
            &format!("/v1/orders/{order_id}/returns"),
            &shop.key,
            json!({ "items": [{ "product_id": product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(returned.status, 201, "{returned:?}");
    let adjusted = app
        .post(
            &format!("/v1/products/{product}/stock-adjustments"),
            &shop.key,
            json!({ "delta": -2, "reason": "damaged" }),
        )
        .await;
    assert_eq!(adjusted.status, 201, "{adjusted:?}");
    let lowered = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &shop.key,
            json!({ "credit_limit": 4_000 }),
        )
        .await;
    assert_eq!(lowered.status, 200, "{lowered:?}");
    (shop, customer, product, order_id)
}

/// Runs `sql` with the triggers off, in a transaction of its own.
async fn corrupt(app: &TestApp, sql: &str) -> Client {
    let mut client = app.sql().await;
    let tx = crate::helpers::triggers_off(&mut client).await;
    tx.batch_execute(sql).await.expect("corruption applies");
    tx.commit().await.expect("the corruption commits");
    client
}

async fn audit(app: &TestApp) -> ontab::app::audit::Report {
    let mut client = app.sql().await;
    ontab::app::audit::audit(&mut client, None)
        .await
        .expect("audit runs")
}

/// Asserts that exactly the `expected` checks fail, each naming `subject`.
fn assert_found(report: &ontab::app::audit::Report, expected: &[&str], subject: &str) {
    let failed: Vec<&str> = ontab::app::audit::checks()
        .map(|(name, _)| name)
        .filter(|check| report.failed(check))
        .collect();
    assert_eq!(failed, expected, "{:#?}", report.violations);
    for check in expected {
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.check == *check && v.subject.contains(subject)),
            "{check} does not name {subject}: {:#?}",
            report.violations
        );
    }
}

#[tokio::test]
async fn clean_data_passes_every_check() {
    let app = TestApp::spawn().await;
    let (shop, ..) = busy_shop(&app, "Shop").await;
    busy_shop(&app, "Other").await;
    let report = audit(&app).await;
    assert_eq!(report.businesses, 2);
    assert!(report.violations.is_empty(), "{:#?}", report.violations);

    let mut client = app.sql().await;
    let one = ontab::app::audit::audit(&mut client, Some(shop.id))
        .await
        .expect("audit of one business");
    assert_eq!(one.businesses, 1);
    assert!(one.violations.is_empty());
}

#[tokio::test]
async fn a_broken_ledger_chain_is_found() {
    let app = TestApp::spawn().await;
    let (_, customer, ..) = busy_shop(&app, "Shop").await;
    corrupt(
        &app,
        "UPDATE credit_ledger SET balance_after = balance_after - 1, purchases_to_date = purchases_to_date
          WHERE kind = 'payment'",
    )
    .await;
    let report = audit(&app).await;
    assert_found(&report, &["ledger_chain"], &customer.to_string());
    // The payment's balance and the next entry's continuation both break.
    assert_eq!(report.violations.len(), 2, "{:#?}", report.violations);
}

#[tokio::test]
async fn a_purchase_above_the_limit_of_its_time_is_found() {
    let app = TestApp::spawn().await;
    let (_, customer, ..) = busy_shop(&app, "Shop").await;
    // As if the first limit had been 100: both purchases went above it.
    corrupt(
        &app,
        "UPDATE customer_changes SET credit_limit = 100
          WHERE id = (SELECT min(id) FROM customer_changes)",
    )
    .await;
    let report = audit(&app).await;
    assert_found(&report, &["credit_limit"], &customer.to_string());
    assert_eq!(report.violations.len(), 2, "{:#?}", report.violations);
}

#[tokio::test]
async fn an_order_total_that_disagrees_is_found() {
    let app = TestApp::spawn().await;
    let (_, _, _, order) = busy_shop(&app, "Shop").await;
    corrupt(
        &app,
        &format!("UPDATE orders SET total = total + 1 WHERE id = '{order}'"),
    )
    .await;
    assert_found(&audit(&app).await, &["order_totals"], &order.to_string());
}

#[tokio::test]
async fn a_return_beyond_the_purchase_is_found() {
    let app = TestApp::spawn().await;
    let (_, _, product, order) = busy_shop(&app, "Shop").await;
    // Ten more units "returned" on the same return, and put back in stock,
    // so the stock reconciles but the return exceeds the purchase.
    corrupt(
        &app,
        &format!(
            "UPDATE return_items SET quantity = quantity + 10, line_total = (quantity + 10) * unit_price
              WHERE order_id = '{order}' AND product_id = '{product}';
             UPDATE products SET stock = stock + 10 WHERE id = '{product}'"
        ),
    )
    .await;
    let report = audit(&app).await;
    assert_found(&report, &["returns"], "");
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.check == "returns" && v.detail.contains("returned, but the order bought 3")),
        "{:#?}",
        report.violations
    );
}

#[tokio::test]
async fn stock_that_does_not_reconcile_is_found() {
    let app = TestApp::spawn().await;
    let (_, _, product, _) = busy_shop(&app, "Shop").await;
    corrupt(
        &app,
        &format!("UPDATE products SET stock = stock + 5 WHERE id = '{product}'"),
    )
    .await;
    let report = audit(&app).await;
    assert_found(&report, &["stock"], &product.to_string());
    assert!(
        report.violations[0]
            .detail
            .contains("stock is 51, but initial 50 + adjustments -2 − sold 3 + returned 1 = 46"),
        "{:#?}",
        report.violations
    );
}

#[tokio::test]
async fn a_reference_to_another_tenant_is_found() {
    let app = TestApp::spawn().await;
    let (_, _, _, order) = busy_shop(&app, "Shop").await;
    let (_, their_customer, ..) = busy_shop(&app, "Other").await;
    corrupt(
        &app,
        &format!("UPDATE orders SET customer_id = '{their_customer}' WHERE id = '{order}'"),
    )
    .await;
    let report = audit(&app).await;
    // The order now points outside its tenant; its ledger entry, and its
    // return's, are no longer on its (foreign) customer's ledger.
    assert_found(&report, &["order_totals", "returns", "references"], "");
    assert!(
        report.violations.iter().any(|v| v.check == "references"
            && v.subject == format!("order {order}")
            && v.detail.contains(&their_customer.to_string())),
        "{:#?}",
        report.violations
    );
}

#[tokio::test]
async fn the_command_exits_non_zero_with_a_readable_report() {
    let app = TestApp::spawn().await;
    let (_, _, product, _) = busy_shop(&app, "Shop").await;
    let run = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ontab"))
            .args(["audit", "--database-url", &app.database_url()])
            .env_remove("DATABASE_URL")
            .output()
            .await
            .expect("ontab runs")
    };
    let clean = run().await;
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert!(
        clean.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(
        stdout.contains("audited 1 business(es): 0 violation(s)"),
        "{stdout}"
    );

    corrupt(
        &app,
        &format!("UPDATE products SET stock = stock - 1 WHERE id = '{product}'"),
    )
    .await;
    let broken = run().await;
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("stock         1 VIOLATION(S)"), "{stdout}");
    assert!(
        stdout.contains(&format!("product {product}: stock is 45")),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("1 invariant violation(s) found"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
}

#[tokio::test]
async fn a_purchase_while_on_hold_is_found() {
    let app = TestApp::spawn().await;
    let (_, customer, ..) = busy_shop(&app, "Shop").await;
    // As if the customer had been on hold from the start: both purchases
    // were made while it was not active (its payment and return may be).
    corrupt(
        &app,
        "UPDATE customer_changes SET status = 'on_hold'
          WHERE id = (SELECT min(id) FROM customer_changes)",
    )
    .await;
    let report = audit(&app).await;
    assert_found(&report, &["account_rules"], &customer.to_string());
    assert_eq!(report.violations.len(), 2, "{:#?}", report.violations);
    assert!(
        report
            .violations
            .iter()
            .all(|v| v.detail.contains("while the customer was on_hold")),
        "{:#?}",
        report.violations
    );
}

#[tokio::test]
async fn an_entry_while_closed_is_found() {
    let app = TestApp::spawn().await;
    let (_, customer, ..) = busy_shop(&app, "Shop").await;
    corrupt(
        &app,
        "UPDATE customer_changes SET status = 'closed'
          WHERE id = (SELECT min(id) FROM customer_changes)",
    )
    .await;
    let report = audit(&app).await;
    assert_found(&report, &["account_rules"], &customer.to_string());
    // Each of the four entries was made while closed; the two purchases
    // also while not active.
    assert_eq!(report.violations.len(), 6, "{:#?}", report.violations);
}

#[tokio::test]
async fn a_due_date_off_the_terms_in_force_is_found() {
    let app = TestApp::spawn().await;
    let (_, customer, ..) = busy_shop(&app, "Shop").await;
    corrupt(
        &app,
        "UPDATE credit_ledger SET due_at = (due_at AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
          WHERE kind = 'purchase' AND seq = 1",
    )
    .await;
    let report = audit(&app).await;
    assert_found(&report, &["account_rules"], &customer.to_string());
    // Not its terms after it was made, and not its order's due date.
    assert_eq!(report.violations.len(), 2, "{:#?}", report.violations);
}

#[tokio::test]
async fn a_write_off_beyond_the_balance_is_found() {
    let app = TestApp::spawn().await;
    let (_, customer, ..) = busy_shop(&app, "Shop").await;
    // A write-off of the balance and 500 more, the chain otherwise intact.
    corrupt(
        &app,
        "INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after,
                                    purchases_to_date, reason, created_at)
         SELECT business_id, gen_random_uuid(), customer_id, seq + 1, 'write_off', -(balance_after + 500), -500,
                purchases_to_date, 'forged', now()
           FROM credit_ledger ORDER BY seq DESC LIMIT 1",
    )
    .await;
    let report = audit(&app).await;
    // Planted with the triggers off, the forged entry has no event either:
    // the events' check finds that too.
    let found: Vec<(&str, &str)> = report
        .violations
        .iter()
        .map(|v| (v.check, v.subject.as_str()))
        .collect();
    let subject = format!("customer {customer}");
    assert_eq!(
        found,
        [
            ("ledger_chain", subject.as_str()),
            ("events_complete", "events write_off.recorded"),
        ],
        "{:#?}",
        report.violations
    );
    assert!(
        report.violations[0]
            .detail
            .contains("the write_off took the balance below zero"),
        "{:#?}",
        report.violations
    );
}
