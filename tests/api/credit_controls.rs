//! Credit controls (contract section "Credit controls (customers)"):
//! account status and its refusals and precedence, payment terms and due
//! dates, write-offs, the change history, the overdue report by due date;
//! each rule over HTTP, under concurrency, and held by PostgreSQL in SQL.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, Business, Reply, TestApp, as_tenant};
use crate::support::{
    MAX_SAFE, all_pages, assert_invalid, balance, customer_body, give_back, keys_of, ledger, pay,
    problem,
};

async fn patch_customer(app: &TestApp, shop: &Business, customer: Uuid, body: Value) -> Reply {
    app.patch(&format!("/v1/customers/{customer}"), &shop.key, body)
        .await
}

async fn set_status(app: &TestApp, shop: &Business, customer: Uuid, status: &str) -> Reply {
    patch_customer(app, shop, customer, json!({ "status": status })).await
}

async fn write_off(app: &TestApp, shop: &Business, customer: Uuid, amount: i64) -> Reply {
    app.post(
        &format!("/v1/customers/{customer}/write-offs"),
        &shop.key,
        json!({ "amount": amount, "reason": "bankrupt" }),
    )
    .await
}

async fn hold(app: &TestApp, shop: &Business, customer: Uuid, product: Uuid) -> Reply {
    app.post(
        "/v1/holds",
        &shop.key,
        json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] }),
    )
    .await
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {value}"))
}

/// The id of the business's first API key (the one `business()` returned).
async fn key_id(app: &TestApp, shop: &Business) -> String {
    let keys = app.get("/v1/api-keys", &shop.key).await;
    assert_eq!(keys.status, 200, "{keys:?}");
    keys.body["data"][0]["id"]
        .as_str()
        .expect("a key id")
        .to_owned()
}

/// Asserts a `customer_on_hold` / `customer_closed` refusal naming `customer`.
fn refused_for(reply: &Reply, code: &str, customer: Uuid) {
    let body = problem(reply, 409, code);
    assert_eq!(body["customer_id"], customer.to_string(), "{reply:?}");
}

#[tokio::test]
async fn terms_default_to_the_business_and_status_to_active_and_are_validated() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;

    let business = app.get("/v1/business", &shop.key).await;
    assert_eq!(business.status, 200, "{business:?}");
    assert_eq!(business.body["id"], shop.id.to_string());
    assert_eq!(business.body["payment_terms_days"], 30);

    let first = app.customer(&shop, 1_000).await;
    let body = customer_body(&app, &shop, first).await;
    assert_eq!(
        (&body["status"], &body["payment_terms_days"]),
        (&json!("active"), &json!(30))
    );

    // The tenant changes its own default: new customers get it, existing
    // ones keep theirs.
    let changed = app
        .patch(
            "/v1/business",
            &shop.key,
            json!({ "payment_terms_days": 45 }),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(changed.body["payment_terms_days"], 45);
    assert_eq!(
        app.get("/v1/business", &shop.key).await.body["payment_terms_days"],
        45
    );
    let second = app.customer(&shop, 1_000).await;
    assert_eq!(
        customer_body(&app, &shop, second).await["payment_terms_days"],
        45
    );
    assert_eq!(
        customer_body(&app, &shop, first).await["payment_terms_days"],
        30
    );

    // Both set on create, and the override wins over the default.
    let own = app
        .post(
            "/v1/customers",
            &shop.key,
            json!({ "name": "Own", "credit_limit": 0, "status": "on_hold", "payment_terms_days": 0 }),
        )
        .await;
    assert_eq!(own.status, 201, "{own:?}");
    assert_eq!(own.body["status"], "on_hold");
    assert_eq!(own.body["payment_terms_days"], 0);

    // Set on POST /v1/businesses too.
    let created = app
        .request(
            reqwest::Method::POST,
            "/v1/businesses",
            Some(ADMIN_TOKEN),
            &[],
            Some(&json!({ "name": "Net7", "payment_terms_days": 7 })),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["payment_terms_days"], 7);

    // 0..=365, one of the three statuses, never null.
    for (body, field) in [
        (
            json!({ "name": "x", "credit_limit": 0, "payment_terms_days": -1 }),
            "payment_terms_days",
        ),
        (
            json!({ "name": "x", "credit_limit": 0, "payment_terms_days": 366 }),
            "payment_terms_days",
        ),
        (
            json!({ "name": "x", "credit_limit": 0, "payment_terms_days": MAX_SAFE + 1 }),
            "payment_terms_days",
        ),
        (
            json!({ "name": "x", "credit_limit": 0, "status": "frozen" }),
            "status",
        ),
        (
            json!({ "name": "x", "credit_limit": 0, "status": "" }),
            "status",
        ),
    ] {
        let reply = app.post("/v1/customers", &shop.key, body.clone()).await;
        assert_invalid(&reply, &[field]);
    }
    for (body, field) in [
        (json!({ "payment_terms_days": 366 }), "payment_terms_days"),
        (json!({ "payment_terms_days": null }), "payment_terms_days"),
        (json!({ "status": null }), "status"),
        (json!({ "status": "CLOSED" }), "status"),
    ] {
        let reply = patch_customer(&app, &shop, first, body).await;
        assert_invalid(&reply, &[field]);
    }
    for body in [
        json!({ "payment_terms_days": 366 }),
        json!({ "payment_terms_days": -1 }),
    ] {
        let reply = app.patch("/v1/business", &shop.key, body).await;
        assert_invalid(&reply, &["payment_terms_days"]);
    }
    let wrong_type = patch_customer(&app, &shop, first, json!({ "status": 1 })).await;
    problem(&wrong_type, 400, "malformed_request");
    // Nothing of the refused requests stuck.
    assert_eq!(
        customer_body(&app, &shop, first).await,
        body_with_terms(&body, 30)
    );
}

fn body_with_terms(body: &Value, terms: i64) -> Value {
    let mut body = body.clone();
    body["payment_terms_days"] = json!(terms);
    body
}

#[tokio::test]
async fn on_hold_refuses_purchases_and_holds_but_takes_payments_returns_and_write_offs() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 100).await;
    let order = app.purchase(&shop, customer, &[(product, 10)]).await;
    assert_eq!(order.status, 201, "{order:?}");

    let held = set_status(&app, &shop, customer, "on_hold").await;
    assert_eq!(held.status, 200, "{held:?}");
    assert_eq!(held.body["status"], "on_hold");

    refused_for(
        &app.purchase(&shop, customer, &[(product, 1)]).await,
        "customer_on_hold",
        customer,
    );
    refused_for(
        &hold(&app, &shop, customer, product).await,
        "customer_on_hold",
        customer,
    );
    assert_eq!(pay(&app, &shop, customer, 100).await.status, 201);
    assert_eq!(
        give_back(&app, &shop, order.id(), &[(product, 1)])
            .await
            .status,
        201
    );
    assert_eq!(write_off(&app, &shop, customer, 100).await.status, 201);
    assert_eq!(balance(&app, &shop, customer).await, 700);
    // The refused purchases moved nothing: 9 back in stock... 91 left.
    let stock = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(stock.body["stock"], 91);

    let active = set_status(&app, &shop, customer, "active").await;
    assert_eq!(active.status, 200, "{active:?}");
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 1)]).await.status,
        201
    );
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn closed_only_from_zero_for_good_and_every_movement_is_refused() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 100).await;
    let order = app.purchase(&shop, customer, &[(product, 5)]).await;
    assert_eq!(order.status, 201, "{order:?}");

    let owing = set_status(&app, &shop, customer, "closed").await;
    let body = problem(&owing, 409, "balance_outstanding");
    assert_eq!(body["balance"], 500);
    assert_eq!(
        customer_body(&app, &shop, customer).await["status"],
        "active"
    );

    assert_eq!(pay(&app, &shop, customer, 500).await.status, 201);
    // A pending hold does not keep it open: closing voids it.
    let pending = hold(&app, &shop, customer, product).await;
    assert_eq!(pending.status, 201, "{pending:?}");
    let closed = set_status(&app, &shop, customer, "closed").await;
    assert_eq!(closed.status, 200, "{closed:?}");
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["held"], 0);
    let voided = app
        .get(&format!("/v1/holds/{}", pending.id()), &shop.key)
        .await;
    assert_eq!(voided.body["status"], "voided", "{voided:?}");

    refused_for(
        &app.purchase(&shop, customer, &[(product, 1)]).await,
        "customer_closed",
        customer,
    );
    refused_for(
        &pay(&app, &shop, customer, 1).await,
        "customer_closed",
        customer,
    );
    refused_for(
        &write_off(&app, &shop, customer, 1).await,
        "customer_closed",
        customer,
    );
    refused_for(
        &give_back(&app, &shop, order.id(), &[(product, 1)]).await,
        "customer_closed",
        customer,
    );
    refused_for(
        &hold(&app, &shop, customer, product).await,
        "customer_closed",
        customer,
    );
    // Final: not reopened, not put on hold; a name or limit may still change.
    for status in ["active", "on_hold"] {
        refused_for(
            &set_status(&app, &shop, customer, status).await,
            "customer_closed",
            customer,
        );
    }
    let renamed = patch_customer(
        &app,
        &shop,
        customer,
        json!({ "name": "Gone", "status": "closed" }),
    )
    .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    assert_eq!(renamed.body["status"], "closed");
    assert_eq!(ledger(&app, &shop, customer).await.len(), 2);
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn refusals_come_in_the_contract_order() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 100, 1).await;
    let closed = app.customer(&shop, 0).await;
    assert_eq!(set_status(&app, &shop, closed, "closed").await.status, 200);
    let on_hold = app.customer(&shop, 0).await;
    assert_eq!(
        set_status(&app, &shop, on_hold, "on_hold").await.status,
        200
    );
    let unknown_product = Uuid::now_v7();

    for (customer, code) in [(closed, "customer_closed"), (on_hold, "customer_on_hold")] {
        // validation_failed and not_found come first...
        let invalid = app.purchase(&shop, customer, &[(product, 0)]).await;
        assert_invalid(&invalid, &["items[0].quantity"]);
        let missing = app.purchase(&shop, customer, &[(unknown_product, 1)]).await;
        problem(&missing, 404, "not_found");
        // ... then the account, before insufficient_stock (5 > 1 in stock)
        // and credit_limit_exceeded (a limit of 0).
        let short = app.purchase(&shop, customer, &[(product, 5)]).await;
        refused_for(&short, code, customer);
        let over = app.purchase(&shop, customer, &[(product, 1)]).await;
        refused_for(&over, code, customer);
        let held = app
            .post(
                "/v1/holds",
                &shop.key,
                json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 5 }] }),
            )
            .await;
        refused_for(&held, code, customer);
    }
    // Closed before payment_exceeds_balance and write_off_exceeds_balance
    // (a closed customer's balance is 0: any amount exceeds it).
    refused_for(
        &pay(&app, &shop, closed, 10).await,
        "customer_closed",
        closed,
    );
    refused_for(
        &write_off(&app, &shop, closed, 10).await,
        "customer_closed",
        closed,
    );
    // On hold takes credits, so their own refusals show.
    let paid = pay(&app, &shop, on_hold, 10).await;
    let body = problem(&paid, 409, "payment_exceeds_balance");
    assert_eq!((&body["balance"], &body["amount"]), (&json!(0), &json!(10)));
    let written = write_off(&app, &shop, on_hold, 10).await;
    let body = problem(&written, 409, "write_off_exceeds_balance");
    assert_eq!((&body["balance"], &body["amount"]), (&json!(0), &json!(10)));
    // A bad amount is validation_failed before the account's state.
    let invalid = app
        .post(
            &format!("/v1/customers/{closed}/write-offs"),
            &shop.key,
            json!({ "amount": 0, "reason": "x" }),
        )
        .await;
    assert_invalid(&invalid, &["amount"]);
}

/// 32 purchases race a change to `on_hold`. The customer's row lock orders
/// them: every purchase that got its 201 has a ledger entry at or before
/// the position the change was recorded at (`after_seq`), every other one
/// was refused `customer_on_hold`, and nothing was appended after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_status_flip_racing_32_purchases_is_ordered_by_the_customer_lock() {
    let app = Arc::new(TestApp::spawn().await);
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000_000).await;
    let product = app.product(&shop, 10, 1_000).await;
    let purchase = |app: Arc<TestApp>, shop: Business| {
        tokio::spawn(async move { app.purchase(&shop, customer, &[(product, 1)]).await })
    };
    let mut buys = Vec::new();
    for _ in 0..16 {
        buys.push(purchase(app.clone(), shop.clone()));
    }
    let flip = {
        let (app, shop) = (app.clone(), shop.clone());
        tokio::spawn(async move { set_status(&app, &shop, customer, "on_hold").await })
    };
    for _ in 0..16 {
        buys.push(purchase(app.clone(), shop.clone()));
    }
    let flipped = flip.await.expect("task");
    assert_eq!(flipped.status, 200, "{flipped:?}");
    let mut accepted = Vec::new();
    let mut refused = 0;
    for reply in futures::future::join_all(buys).await {
        let reply = reply.expect("task");
        if reply.status == 201 {
            accepted.push(reply.id());
        } else {
            refused_for(&reply, "customer_on_hold", customer);
            refused += 1;
        }
    }
    assert_eq!(accepted.len() + refused, 32);

    let sql = app.sql().await;
    let flip_at: i64 = sql
        .query_one(
            "SELECT after_seq FROM customer_changes WHERE customer_id = $1 AND status = 'on_hold'",
            &[&customer],
        )
        .await
        .expect("the flip is recorded once")
        .get(0);
    let entries = sql
        .query(
            "SELECT seq, order_id FROM credit_ledger WHERE customer_id = $1 ORDER BY seq",
            &[&customer],
        )
        .await
        .expect("ledger");
    assert_eq!(entries.len(), accepted.len(), "one entry per 201");
    for row in &entries {
        let (seq, order): (i64, Uuid) = (row.get(0), row.get(1));
        assert!(
            seq <= flip_at,
            "entry {seq} came after the flip at {flip_at}"
        );
        assert!(
            accepted.contains(&order),
            "entry {seq} is no accepted order"
        );
    }
    assert_eq!(i64::try_from(accepted.len()).expect("small"), flip_at);
    // The history shows the flip after exactly those purchases.
    let history = app
        .get(&format!("/v1/customers/{customer}/history"), &shop.key)
        .await;
    assert_eq!(
        history.body["data"][1]["status"],
        json!({ "old": "active", "new": "on_hold" })
    );
    app.assert_audit_clean().await;
}

/// A group-commit batch answers each order on its own: an on-hold or closed
/// customer's orders are refused, the others' in the same call written.
#[tokio::test]
async fn group_commit_batches_refuse_per_order_not_per_batch() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 10, 1_000).await;
    let active = app.customer(&shop, 10_000).await;
    let on_hold = app.customer(&shop, 10_000).await;
    let closed = app.customer(&shop, 10_000).await;
    assert_eq!(
        set_status(&app, &shop, on_hold, "on_hold").await.status,
        200
    );
    assert_eq!(set_status(&app, &shop, closed, "closed").await.status, 200);

    // In SQL, as the server calls it: one batch, five orders.
    let mut client = app.sql().await;
    let tx = client.transaction().await.expect("begin");
    as_tenant(&tx, shop.id).await;
    let customers = [active, on_hold, active, closed, active];
    let ids: Vec<Uuid> = customers.iter().map(|_| Uuid::now_v7()).collect();
    let entries: Vec<Uuid> = customers.iter().map(|_| Uuid::now_v7()).collect();
    let line_orders: Vec<i32> = (1..=5).collect();
    let products = vec![product; 5];
    let quantities = vec![1_i64; 5];
    let row = tx
        .query_one(
            "SELECT ontab_purchase_batch($1, $2, $3, $4, $5, $6)",
            &[
                &ids,
                &entries,
                &customers.to_vec(),
                &line_orders,
                &products,
                &quantities,
            ],
        )
        .await
        .expect("ontab_purchase_batch");
    let answers: Vec<Value> = row.get(0);
    tx.commit().await.expect("commit");
    let codes: Vec<&str> = answers
        .iter()
        .map(|answer| answer["error"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(
        codes,
        ["ok", "customer_on_hold", "ok", "customer_closed", "ok"],
        "{answers:?}"
    );
    assert_eq!(balance(&app, &shop, active).await, 30);

    // Over HTTP, concurrently (group-committed when they meet).
    let app = Arc::new(app);
    let buys = (0..24).map(|n| {
        let (app, shop) = (app.clone(), shop.clone());
        let customer = customers[n % 5];
        tokio::spawn(async move {
            (
                customer,
                app.purchase(&shop, customer, &[(product, 1)]).await,
            )
        })
    });
    for joined in futures::future::join_all(buys).await {
        let (customer, reply) = joined.expect("task");
        match customer {
            c if c == active => assert_eq!(reply.status, 201, "{reply:?}"),
            c if c == on_hold => refused_for(&reply, "customer_on_hold", on_hold),
            _ => refused_for(&reply, "customer_closed", closed),
        }
    }
    assert_eq!(ledger(&app, &shop, on_hold).await.len(), 0);
    assert_eq!(ledger(&app, &shop, closed).await.len(), 0);
    app.assert_audit_clean().await;
}

/// What PostgreSQL answered to a statement that had to fail.
async fn expect_refused(
    client: &tokio_postgres::Client,
    sql: &str,
    code: SqlState,
    constraint: Option<&str>,
) {
    let refusal = crate::helpers::refused(client, sql).await;
    if crate::helpers::refused_at_commit_on_citus(&refusal) {
        return;
    }
    assert_eq!(refusal.code, code, "`{sql}`: {refusal:?}");
    if let Some(constraint) = constraint {
        crate::helpers::assert_constraint(&refusal, constraint, sql);
    }
}

/// The account rules hold in SQL, whoever writes: `ontab_app` only moves
/// money through the use-case functions, which answer the refusals; a
/// direct ledger entry (as `ontab_writer`, what those functions could write
/// with a bug, or the owner) is refused by the chain trigger; a closed
/// customer cannot be reopened nor a customer with a balance closed.
#[tokio::test]
async fn the_account_rules_hold_in_sql() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 100, 100).await;
    let buyer = app.customer(&shop, 10_000).await;
    let order = app.purchase(&shop, buyer, &[(product, 2)]).await;
    assert_eq!(order.status, 201, "{order:?}");
    let on_hold = app.customer(&shop, 10_000).await;
    assert_eq!(
        set_status(&app, &shop, on_hold, "on_hold").await.status,
        200
    );
    let closed = app.customer(&shop, 10_000).await;
    assert_eq!(set_status(&app, &shop, closed, "closed").await.status, 200);

    let session = |role: &'static str| {
        let app = &app;
        let tenant = shop.id.to_string();
        async move {
            let client = app.sql().await;
            client
                .batch_execute(&format!("SET ROLE {role}"))
                .await
                .expect("the superuser may take the role");
            client
                .execute(
                    "SELECT set_config('ontab.business_id', $1, false)",
                    &[&tenant],
                )
                .await
                .expect("tenant");
            client
        }
    };
    let app_role = session("ontab_app").await;
    // Each in a transaction of its own with the tenant SET LOCAL, which a
    // distributed PostgreSQL forwards to its nodes.
    let answer = |sql: String| {
        let client = &app_role;
        async move {
            crate::helpers::begin_as_session_tenant(client).await;
            let row = client.query_one(&sql, &[]).await.expect(&sql);
            client.batch_execute("ROLLBACK").await.expect("rollback");
            let value: Value = row.get(0);
            value
        }
    };
    for (sql, code, customer) in [
        (
            format!("SELECT ontab_pay(gen_random_uuid(), '{closed}', 1)"),
            "customer_closed",
            closed,
        ),
        (
            format!("SELECT ontab_write_off(gen_random_uuid(), '{closed}', 1, 'x')"),
            "customer_closed",
            closed,
        ),
        (
            format!(
                "SELECT ontab_purchase(gen_random_uuid(), gen_random_uuid(), '{closed}', ARRAY['{product}'::uuid], ARRAY[1::bigint])"
            ),
            "customer_closed",
            closed,
        ),
        (
            format!(
                "SELECT ontab_purchase(gen_random_uuid(), gen_random_uuid(), '{on_hold}', ARRAY['{product}'::uuid], ARRAY[1::bigint])"
            ),
            "customer_on_hold",
            on_hold,
        ),
    ] {
        let value = answer(sql.clone()).await;
        assert_eq!(value["error"], code, "{sql}: {value}");
        assert_eq!(value["customer_id"], customer.to_string(), "{sql}: {value}");
    }
    // No direct ledger entry for ontab_app at all.
    expect_refused(&app_role, &format!(
            "INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after) \
             VALUES ('{}', gen_random_uuid(), '{closed}', 1, 'payment', -1, -1)",
            shop.id
        ), SqlState::INSUFFICIENT_PRIVILEGE, None).await;
    // The status rules as ontab_app (which may update customers).
    expect_refused(
        &app_role,
        &format!("UPDATE customers SET status = 'active' WHERE id = '{closed}'"),
        SqlState::CHECK_VIOLATION,
        Some("customers_closed_is_final"),
    )
    .await;
    expect_refused(
        &app_role,
        &format!("UPDATE customers SET status = 'closed' WHERE id = '{buyer}'"),
        SqlState::CHECK_VIOLATION,
        Some("customers_closed_from_zero"),
    )
    .await;
    // History is append-only for ontab_app.
    expect_refused(
        &app_role,
        &format!("UPDATE customer_changes SET status = 'active' WHERE customer_id = '{closed}'"),
        SqlState::INSUFFICIENT_PRIVILEGE,
        None,
    )
    .await;
    expect_refused(
        &app_role,
        &format!("DELETE FROM customer_changes WHERE customer_id = '{closed}'"),
        SqlState::INSUFFICIENT_PRIVILEGE,
        None,
    )
    .await;

    // Direct entries, as the writer and as the owner: refused by the chain
    // trigger whatever the entry says.
    let writer = session("ontab_writer").await;
    let owner = app.sql().await;
    for client in [&writer, &owner] {
        for (kind, amount, customer, constraint) in [
            ("payment", 10, closed, "credit_ledger_customer_not_closed"),
            ("write_off", 10, closed, "credit_ledger_customer_not_closed"),
            (
                "purchase",
                10,
                on_hold,
                "credit_ledger_purchase_by_active_customer",
            ),
            ("purchase", 10, closed, "credit_ledger_customer_not_closed"),
        ] {
            let (sign, due, reason) = match kind {
                "purchase" => (1, "now() + interval '30 days'", "NULL"),
                _ => (-1, "NULL", if kind == "write_off" { "'x'" } else { "NULL" }),
            };
            let order = if kind == "purchase" {
                format!("'{}'", Uuid::now_v7())
            } else {
                "NULL".to_owned()
            };
            let sql = format!(
                "INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, order_id, due_at, reason) \
                 VALUES ('{}', gen_random_uuid(), '{customer}', 1, '{kind}', {a}, {a}, {order}, {due}, {reason})",
                shop.id,
                a = sign * amount,
            );
            expect_refused(client, &sql, SqlState::CHECK_VIOLATION, Some(constraint)).await;
        }
        // A purchase due at anything but created_at + the terms in force.
        let sql = format!(
            "INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, order_id, due_at, created_at) \
             VALUES ('{}', gen_random_uuid(), '{buyer}', 2, 'purchase', 1, 201, '{}', now() + interval '29 days', now())",
            shop.id,
            Uuid::now_v7(),
        );
        expect_refused(
            client,
            &sql,
            SqlState::CHECK_VIOLATION,
            Some("credit_ledger_due_on_terms"),
        )
        .await;
    }
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn write_offs_need_a_reason_stay_within_the_balance_and_are_idempotent() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 1_000, 10).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 2)]).await.status,
        201
    );
    let path = format!("/v1/customers/{customer}/write-offs");

    for (body, fields) in [
        (json!({ "amount": 100, "reason": "" }), vec!["reason"]),
        (json!({ "amount": 100, "reason": "   " }), vec!["reason"]),
        (
            json!({ "amount": 100, "reason": "x".repeat(201) }),
            vec!["reason"],
        ),
        (json!({ "amount": 0, "reason": "x" }), vec!["amount"]),
        (json!({ "amount": -5, "reason": "x" }), vec!["amount"]),
        (
            json!({ "amount": MAX_SAFE + 1, "reason": "x" }),
            vec!["amount"],
        ),
        (
            json!({ "amount": 0, "reason": "" }),
            vec!["amount", "reason"],
        ),
    ] {
        assert_invalid(&app.post(&path, &shop.key, body).await, &fields);
    }
    for body in [
        json!({ "amount": 100 }),
        json!({ "reason": "x" }),
        json!({ "amount": "100", "reason": "x" }),
        json!({ "amount": 100, "reason": "x", "extra": 1 }),
    ] {
        problem(
            &app.post(&path, &shop.key, body).await,
            400,
            "malformed_request",
        );
    }

    let over = app
        .post(
            &path,
            &shop.key,
            json!({ "amount": 2_001, "reason": "gone" }),
        )
        .await;
    let body = problem(&over, 409, "write_off_exceeds_balance");
    assert_eq!(
        (&body["balance"], &body["amount"]),
        (&json!(2_000), &json!(2_001))
    );

    let first = app
        .post_once(
            &path,
            &shop.key,
            "wo-1",
            json!({ "amount": 1_500, "reason": "bankrupt" }),
        )
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(
        keys_of(&first.body),
        [
            "amount",
            "balance_after",
            "created_at",
            "customer_id",
            "due_at",
            "id",
            "kind",
            "order_id",
            "reason",
            "return_id",
            "seq"
        ]
    );
    assert_eq!(first.body["kind"], "write_off");
    assert_eq!(first.body["amount"], -1_500);
    assert_eq!(first.body["balance_after"], 500);
    assert_eq!(first.body["reason"], "bankrupt");
    assert_eq!(first.body["order_id"], Value::Null);
    assert_eq!(first.body["due_at"], Value::Null);
    // Replayed, not repeated; another body under the key is refused.
    let again = app
        .post_once(
            &path,
            &shop.key,
            "wo-1",
            json!({ "amount": 1_500, "reason": "bankrupt" }),
        )
        .await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    let reused = app
        .post_once(
            &path,
            &shop.key,
            "wo-1",
            json!({ "amount": 1_000, "reason": "bankrupt" }),
        )
        .await;
    problem(&reused, 409, "idempotency_key_reused");
    assert_eq!(balance(&app, &shop, customer).await, 500);
    // The whole balance may go; then nothing more.
    assert_eq!(write_off(&app, &shop, customer, 500).await.status, 201);
    problem(
        &write_off(&app, &shop, customer, 1).await,
        409,
        "write_off_exceeds_balance",
    );
    let entries = ledger(&app, &shop, customer).await;
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["purchase", "write_off", "write_off"]);

    // Unknown customer: 404 after validation.
    let unknown = app
        .post(
            &format!("/v1/customers/{}/write-offs", Uuid::now_v7()),
            &shop.key,
            json!({ "amount": 1, "reason": "x" }),
        )
        .await;
    problem(&unknown, 404, "not_found");
    let not_an_id = app
        .post(
            "/v1/customers/nope/write-offs",
            &shop.key,
            json!({ "amount": 1, "reason": "x" }),
        )
        .await;
    assert!(matches!(not_an_id.status, 404 | 422), "{not_an_id:?}");
    app.assert_audit_clean().await;
}

/// Write-offs settle the oldest purchases first, in the overdue report and
/// in a statement's aging alike.
#[tokio::test]
async fn write_offs_settle_the_oldest_purchases_first() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app
        .post(
            "/v1/customers",
            &shop.key,
            json!({ "name": "Due now", "credit_limit": 10_000, "payment_terms_days": 0 }),
        )
        .await
        .id();
    let cheap = app.product(&shop, 100, 10).await;
    let dear = app.product(&shop, 1_000, 10).await;
    let older = app.purchase(&shop, customer, &[(dear, 1)]).await;
    let newer = app.purchase(&shop, customer, &[(cheap, 5)]).await;
    assert_eq!((older.status, newer.status), (201, 201));

    let overdue = app.get("/v1/reports/overdue", &shop.key).await;
    assert_eq!(overdue.status, 200, "{overdue:?}");
    let row = &overdue.body["customers"][0];
    assert_eq!(row["overdue_amount"], 1_500, "{overdue:?}");
    assert_eq!(row["oldest_unpaid_at"], older.body["created_at"]);

    // 1,000 written off: the older purchase is settled, not the newer.
    assert_eq!(write_off(&app, &shop, customer, 1_000).await.status, 201);
    let overdue = app.get("/v1/reports/overdue", &shop.key).await;
    let row = &overdue.body["customers"][0];
    assert_eq!(row["customer_id"], customer.to_string());
    assert_eq!(row["overdue_amount"], 500, "{overdue:?}");
    assert_eq!(row["balance"], 500);
    assert_eq!(
        row["oldest_unpaid_at"], newer.body["created_at"],
        "{overdue:?}"
    );

    // The statement's aging at a `to` 45 days on: the 500 left is 31-60
    // days past its due date.
    let created = time(&newer.body["created_at"]);
    let to = created + TimeDelta::days(45);
    let from = created - TimeDelta::days(1);
    let statement = app
        .get(
            &format!(
                "/v1/customers/{customer}/statement?from={}&to={}",
                rfc3339(from),
                rfc3339(to)
            ),
            &shop.key,
        )
        .await;
    assert_eq!(statement.status, 200, "{statement:?}");
    assert_eq!(statement.body["closing_balance"], 500);
    assert_eq!(
        statement.body["aging"],
        json!({ "current": 0, "1_30": 0, "31_60": 500, "61_90": 0, "over_90": 0 })
    );
    assert_eq!(statement.body["totals"]["write_offs"], -1_000);

    // The rest written off: nobody owes anything.
    assert_eq!(write_off(&app, &shop, customer, 500).await.status, 201);
    let overdue = app.get("/v1/reports/overdue", &shop.key).await;
    assert_eq!(overdue.body["customers"], json!([]), "{overdue:?}");
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[tokio::test]
async fn the_history_records_every_change_who_when_old_and_new() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let first_key = key_id(&app, &shop).await;
    let customer = app.customer(&shop, 1_000).await;
    let second = app.post("/v1/api-keys", &shop.key, json!({})).await;
    assert_eq!(second.status, 201, "{second:?}");
    let second_key = second.body["key"].as_str().expect("key").to_owned();
    let second_id = second.body["id"].as_str().expect("id").to_owned();
    let other = Business {
        id: shop.id,
        key: second_key,
    };

    for (by, body) in [
        (&shop, json!({ "credit_limit": 2_000 })),
        (&other, json!({ "status": "on_hold" })),
        (
            &shop,
            json!({ "payment_terms_days": 7, "credit_limit": 500 }),
        ),
        // No change of limit, status or terms: nothing recorded.
        (&shop, json!({ "name": "Renamed" })),
        (&shop, json!({ "credit_limit": 500 })),
        (
            &other,
            json!({ "status": "active", "payment_terms_days": 14 }),
        ),
    ] {
        let reply = patch_customer(&app, by, customer, body).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    // A refused change records nothing.
    assert_eq!(
        set_status(&app, &shop, customer, "closed").await.status,
        200
    );
    refused_for(
        &set_status(&app, &shop, customer, "active").await,
        "customer_closed",
        customer,
    );

    let path = format!("/v1/customers/{customer}/history");
    let (rows, sizes) = all_pages(&app, &shop.key, &path, 2).await;
    assert_eq!(sizes, [2, 2, 2]);
    let (whole, _) = all_pages(&app, &shop.key, &path, 200).await;
    assert_eq!(rows, whole, "pages join up to the whole history");
    let changes: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut row = row.clone();
            assert!(row["id"].is_i64(), "{row}");
            let at = time(&row["changed_at"]);
            assert!(at <= Utc::now());
            let object = row.as_object_mut().expect("object");
            object.remove("id");
            object.remove("changed_at");
            row
        })
        .collect();
    assert_eq!(
        changes,
        [
            json!({ "changed_by": first_key, "credit_limit": { "old": null, "new": 1_000 },
                    "status": { "old": null, "new": "active" },
                    "payment_terms_days": { "old": null, "new": 30 } }),
            json!({ "changed_by": first_key, "credit_limit": { "old": 1_000, "new": 2_000 } }),
            json!({ "changed_by": second_id, "status": { "old": "active", "new": "on_hold" } }),
            json!({ "changed_by": first_key, "credit_limit": { "old": 2_000, "new": 500 },
                    "payment_terms_days": { "old": 30, "new": 7 } }),
            json!({ "changed_by": second_id, "status": { "old": "on_hold", "new": "active" },
                    "payment_terms_days": { "old": 7, "new": 14 } }),
            json!({ "changed_by": first_key, "status": { "old": "active", "new": "closed" } }),
        ]
    );
    // Ids ascend, times never go back.
    let ids: Vec<i64> = rows
        .iter()
        .map(|row| row["id"].as_i64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");

    // A cursor that is not one, and limits out of range.
    for query in [
        "?cursor=nope",
        "?limit=0",
        "?limit=201",
        "?limit=-1",
        "?limit=99999999999999999999",
    ] {
        let reply = app.get(&format!("{path}{query}"), &shop.key).await;
        problem(&reply, 422, "validation_failed");
    }
    problem(
        &app.get(
            &format!("/v1/customers/{}/history", Uuid::now_v7()),
            &shop.key,
        )
        .await,
        404,
        "not_found",
    );
}

/// A purchase's due date is fixed when it is made: the customer's terms at
/// that moment; a terms change later never moves it.
#[tokio::test]
async fn terms_fix_each_due_date_at_purchase_time() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 100_000).await;
    let product = app.product(&shop, 100, 100).await;

    let first = app.purchase(&shop, customer, &[(product, 1)]).await;
    assert_eq!(first.status, 201, "{first:?}");
    let due = |order: &Value, days: i64| {
        assert_eq!(
            time(&order["due_at"]),
            time(&order["created_at"]) + TimeDelta::days(days),
            "{order}"
        );
    };
    due(&first.body, 30);

    assert_eq!(
        patch_customer(&app, &shop, customer, json!({ "payment_terms_days": 10 }))
            .await
            .status,
        200
    );
    // The business default changing touches no customer either.
    assert_eq!(
        app.patch(
            "/v1/business",
            &shop.key,
            json!({ "payment_terms_days": 90 })
        )
        .await
        .status,
        200
    );
    let second = app.purchase(&shop, customer, &[(product, 1)]).await;
    due(&second.body, 10);
    assert_eq!(
        patch_customer(&app, &shop, customer, json!({ "payment_terms_days": 0 }))
            .await
            .status,
        200
    );
    let third = app.purchase(&shop, customer, &[(product, 1)]).await;
    due(&third.body, 0);

    // Read back: orders and ledger entries keep their first due dates.
    for (order, days) in [(&first, 30), (&second, 10), (&third, 0)] {
        let read = app
            .get(&format!("/v1/orders/{}", order.id()), &shop.key)
            .await;
        assert_eq!(read.body["due_at"], order.body["due_at"], "{read:?}");
        due(&read.body, days);
    }
    let entries = ledger(&app, &shop, customer).await;
    let dues: Vec<&Value> = entries.iter().map(|entry| &entry["due_at"]).collect();
    assert_eq!(
        dues,
        [
            &first.body["due_at"],
            &second.body["due_at"],
            &third.body["due_at"]
        ]
    );
    app.assert_audit_clean().await;
}

/// Without `days` the report ages each purchase by its own due date; with
/// `days` it keeps its meaning (due `days` after it was made).
#[tokio::test]
async fn the_overdue_report_ages_by_due_date_unless_given_days() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 100, 100).await;
    let new_customer = |terms: i64| {
        let (app, shop) = (&app, &shop);
        async move {
            app.post(
                "/v1/customers",
                &shop.key,
                json!({ "name": format!("Net {terms}"), "credit_limit": 10_000, "payment_terms_days": terms }),
            )
            .await
            .id()
        }
    };
    let due_now = new_customer(0).await;
    let net30 = new_customer(30).await;
    for customer in [due_now, net30] {
        assert_eq!(
            app.purchase(&shop, customer, &[(product, 3)]).await.status,
            201
        );
    }

    let by_due = app.get("/v1/reports/overdue", &shop.key).await;
    assert_eq!(by_due.status, 200, "{by_due:?}");
    assert_eq!(by_due.body["days"], Value::Null);
    let listed: Vec<&Value> = by_due.body["customers"]
        .as_array()
        .expect("customers")
        .iter()
        .map(|row| &row["customer_id"])
        .collect();
    assert_eq!(listed, [&json!(due_now.to_string())], "{by_due:?}");
    let row = &by_due.body["customers"][0];
    assert_eq!(row["overdue_amount"], 300);
    assert_eq!(row["aging"]["1_30"], 300);

    // days=0: both are overdue, whatever their terms; days=30: neither.
    let zero = app.get("/v1/reports/overdue?days=0", &shop.key).await;
    assert_eq!(zero.body["days"], 0);
    assert_eq!(
        zero.body["customers"].as_array().map(Vec::len),
        Some(2),
        "{zero:?}"
    );
    let thirty = app.get("/v1/reports/overdue?days=30", &shop.key).await;
    assert_eq!(thirty.body["customers"], json!([]), "{thirty:?}");
    for bad in ["-1", "36501", "x", "1.5", "99999999999999999999"] {
        let reply = app
            .get(&format!("/v1/reports/overdue?days={bad}"), &shop.key)
            .await;
        assert_invalid(&reply, &["days"]);
    }
}

/// Every new route answers another tenant's customer exactly as an unknown
/// one, and changes nothing.
#[tokio::test]
async fn another_tenants_customer_is_not_found_on_every_credit_route() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let rival = app.business("Rival").await;
    let theirs = app.customer(&rival, 10_000).await;
    let product = app.product(&rival, 100, 10).await;
    assert_eq!(
        app.purchase(&rival, theirs, &[(product, 5)]).await.status,
        201
    );
    let unknown = Uuid::now_v7();

    for customer in [theirs, unknown] {
        let replies = [
            app.get(&format!("/v1/customers/{customer}/history"), &shop.key)
                .await,
            app.get(&format!("/v1/customers/{customer}/statement"), &shop.key)
                .await,
            app.request(
                reqwest::Method::GET,
                &format!("/v1/customers/{customer}/statement"),
                Some(&shop.key),
                &[("Accept", "text/csv")],
                None,
            )
            .await,
            write_off(&app, &shop, customer, 1).await,
            app.post_once(
                &format!("/v1/customers/{customer}/write-offs"),
                &shop.key,
                &format!("iso-{customer}"),
                json!({ "amount": 1, "reason": "x" }),
            )
            .await,
            set_status(&app, &shop, customer, "on_hold").await,
            patch_customer(&app, &shop, customer, json!({ "payment_terms_days": 1 })).await,
        ];
        for reply in &replies {
            let body = problem(reply, 404, "not_found");
            assert!(!body.to_string().contains("Customer"), "{body}");
        }
    }
    // Their customer is untouched; the rival's business is not ours to
    // change either (GET/PATCH /v1/business is the caller's own).
    let body = customer_body(&app, &rival, theirs).await;
    assert_eq!(
        (&body["status"], &body["balance"]),
        (&json!("active"), &json!(500))
    );
    assert_eq!(ledger(&app, &rival, theirs).await.len(), 1);
    let history = app
        .get(&format!("/v1/customers/{theirs}/history"), &rival.key)
        .await;
    assert_eq!(history.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.patch(
            "/v1/business",
            &shop.key,
            json!({ "payment_terms_days": 1 })
        )
        .await
        .body["id"],
        shop.id.to_string()
    );
    assert_eq!(
        app.get("/v1/business", &rival.key).await.body["payment_terms_days"],
        30
    );
}

#[tokio::test]
async fn metrics_count_write_offs_status_changes_and_statements() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 10_000).await;
    let product = app.product(&shop, 100, 10).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 2)]).await.status,
        201
    );
    assert_eq!(write_off(&app, &shop, customer, 100).await.status, 201);
    problem(
        &write_off(&app, &shop, customer, 1_000).await,
        409,
        "write_off_exceeds_balance",
    );
    assert_eq!(
        set_status(&app, &shop, customer, "on_hold").await.status,
        200
    );
    assert_eq!(
        app.get(&format!("/v1/customers/{customer}/statement"), &shop.key)
            .await
            .status,
        200
    );
    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, &[], None)
        .await;
    let text = metrics.body.as_str().expect("metrics text");
    for line in [
        "ontab_write_offs_total{outcome=\"written_off\"} ",
        "ontab_write_offs_total{outcome=\"write_off_exceeds_balance\"} ",
        "ontab_customer_status_changes_total{from=\"active\",to=\"on_hold\"} ",
        "ontab_statements_total{format=\"json\"} ",
    ] {
        // The recorder is the test process's, shared by every test: counts
        // only grow, so each series is there with at least 1.
        assert!(
            text.lines().any(|l| l
                .strip_prefix(line)
                .and_then(|n| n.parse::<f64>().ok())
                .is_some_and(|n| n >= 1.0)),
            "no `{line}` in:\n{text}"
        );
    }
}
