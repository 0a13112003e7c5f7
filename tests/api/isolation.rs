//! Tenant isolation: a business never sees, changes or even detects another
//! business's rows, over HTTP (an id of another tenant answers exactly like
//! an id that does not exist) and in SQL (row level security as `ontab_app`).

use reqwest::Method;
use serde_json::{Value, json};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::helpers::{Business, Reply, TestApp, as_tenant};

/// Markers that must never appear in an answer to the other business.
const A_CUSTOMER_NAME: &str = "Alpha-secret-customer-5e1f";
const A_PRODUCT_NAME: &str = "Alpha-secret-product-9c2d";

/// Business A with one of everything, and business B with its own rows.
struct World {
    a: Business,
    b: Business,
    /// A second API key of A, by id and secret.
    a_key_id: Uuid,
    a_key2: String,
    a_customer: Uuid,
    a_customers: Vec<Uuid>,
    a_product: Uuid,
    a_order: Uuid,
    a_orders: Vec<Uuid>,
    a_payment: Uuid,
    a_return: Uuid,
    b_key_id: Uuid,
    b_customer: Uuid,
    b_product: Uuid,
    b_order: Uuid,
}

impl World {
    /// Every id of A that B could try, plus A's business id.
    fn a_ids(&self) -> Vec<Uuid> {
        let mut ids = vec![
            self.a.id,
            self.a_key_id,
            self.a_customer,
            self.a_product,
            self.a_order,
            self.a_payment,
            self.a_return,
        ];
        ids.extend(&self.a_customers);
        ids.extend(&self.a_orders);
        ids
    }
}

async fn named_customer(app: &TestApp, business: &Business, name: &str, limit: i64) -> Uuid {
    let reply = app
        .post(
            "/v1/customers",
            &business.key,
            json!({ "name": name, "credit_limit": limit }),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.id()
}

async fn named_product(
    app: &TestApp,
    business: &Business,
    name: &str,
    price: i64,
    stock: i64,
) -> Uuid {
    let reply = app
        .post(
            "/v1/products",
            &business.key,
            json!({ "name": name, "price": price, "stock": stock }),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.id()
}

async fn new_key(app: &TestApp, business: &Business) -> (Uuid, String) {
    let reply = app.post("/v1/api-keys", &business.key, json!({})).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let key = reply.body["key"]
        .as_str()
        .expect("a new key is shown once")
        .to_owned();
    (reply.id(), key)
}

async fn world(app: &TestApp) -> World {
    let a = app.business("Alpha").await;
    let b = app.business("Bravo").await;

    let (a_key_id, a_key2) = new_key(app, &a).await;
    let a_customer = named_customer(app, &a, A_CUSTOMER_NAME, 100_000).await;
    let mut a_customers = vec![a_customer];
    for _ in 0..2 {
        a_customers.push(named_customer(app, &a, A_CUSTOMER_NAME, 50_000).await);
    }
    let a_product = named_product(app, &a, A_PRODUCT_NAME, 700, 40).await;
    named_product(app, &a, A_PRODUCT_NAME, 300, 10).await;
    named_product(app, &a, A_PRODUCT_NAME, 200, 10).await;

    let mut a_orders = Vec::new();
    for quantity in [3, 2, 1] {
        let order = app.purchase(&a, a_customer, &[(a_product, quantity)]).await;
        assert_eq!(order.status, 201, "{order:?}");
        a_orders.push(order.id());
    }
    let a_order = a_orders[0];
    let paid = app
        .post(
            "/v1/payments",
            &a.key,
            json!({ "customer_id": a_customer, "amount": 500 }),
        )
        .await;
    assert_eq!(paid.status, 201, "{paid:?}");
    let returned = app
        .post(
            &format!("/v1/orders/{a_order}/returns"),
            &a.key,
            json!({ "items": [{ "product_id": a_product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(returned.status, 201, "{returned:?}");

    let (b_key_id, _) = new_key(app, &b).await;
    let b_customer = named_customer(app, &b, "Bravo customer", 100_000).await;
    named_customer(app, &b, "Bravo customer 2", 100_000).await;
    let b_product = named_product(app, &b, "Bravo product", 100, 50).await;
    let b_order = app.purchase(&b, b_customer, &[(b_product, 2)]).await;
    assert_eq!(b_order.status, 201, "{b_order:?}");
    let b_paid = app
        .post(
            "/v1/payments",
            &b.key,
            json!({ "customer_id": b_customer, "amount": 50 }),
        )
        .await;
    assert_eq!(b_paid.status, 201, "{b_paid:?}");

    World {
        a,
        b,
        a_key_id,
        a_key2,
        a_customer,
        a_customers,
        a_product,
        a_order,
        a_orders,
        a_payment: paid.id(),
        a_return: returned.id(),
        b_key_id,
        b_customer,
        b_product,
        b_order: b_order.id(),
    }
}

/// Everything of A that B's attempts could change, as A sees it.
async fn snapshot_of_a(app: &TestApp, w: &World) -> Value {
    let key = &w.a.key;
    let mut parts = Vec::new();
    for path in [
        format!("/v1/customers/{}", w.a_customer),
        format!("/v1/customers/{}/ledger", w.a_customer),
        format!("/v1/products/{}", w.a_product),
        format!("/v1/orders/{}", w.a_order),
        "/v1/customers".to_owned(),
        "/v1/products".to_owned(),
        "/v1/orders".to_owned(),
        "/v1/api-keys".to_owned(),
    ] {
        let reply = app.get(&path, key).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        parts.push(json!({ "path": path, "body": reply.body }));
    }
    Value::Array(parts)
}

/// The answer leaks nothing of A: no marker name, no id of A except the
/// ones B itself put in the request (`echoed`).
fn assert_no_a_data(what: &str, reply: &Reply, w: &World, echoed: &[Uuid]) {
    let text = reply.body.to_string();
    for marker in [A_CUSTOMER_NAME, A_PRODUCT_NAME] {
        assert!(!text.contains(marker), "{what} leaks A's data: {text}");
    }
    for id in w.a_ids() {
        if !echoed.contains(&id) {
            assert!(
                !text.contains(&id.to_string()),
                "{what} leaks A's id {id}: {text}"
            );
        }
    }
    for (name, value) in &reply.headers {
        let value = value.to_str().unwrap_or_default();
        for id in w.a_ids() {
            if !echoed.contains(&id) {
                assert!(
                    !value.contains(&id.to_string()),
                    "{what} leaks A's id in header {name}"
                );
            }
        }
    }
}

/// B's answer for A's ids is a 404 not_found identical to the answer for
/// ids that exist nowhere, once each unknown id is swapped for A's.
fn assert_like_unknown(
    what: &str,
    foreign: &Reply,
    unknown: &Reply,
    swaps: &[(Uuid, Uuid)],
    w: &World,
) {
    assert_eq!(unknown.status, 404, "{what} (unknown ids): {unknown:?}");
    assert_eq!(unknown.code(), "not_found", "{what} (unknown ids)");
    assert_eq!(foreign.status, 404, "{what} (A's ids): {foreign:?}");
    assert_eq!(foreign.code(), "not_found", "{what} (A's ids)");
    assert_eq!(
        foreign.headers.get("content-type"),
        unknown.headers.get("content-type"),
        "{what}"
    );
    let mut expected = unknown.body.to_string();
    for (unknown_id, a_id) in swaps {
        expected = expected.replace(&unknown_id.to_string(), &a_id.to_string());
    }
    assert_eq!(
        foreign.body.to_string(),
        expected,
        "{what}: A's id answers differently from an unknown one"
    );
    let echoed: Vec<Uuid> = swaps.iter().map(|(_, a_id)| *a_id).collect();
    assert_no_a_data(what, foreign, w, &echoed);
}

/// Sends the same request twice as B: once with A's ids, once with fresh
/// random ids in their place, and compares.
async fn probe(
    app: &TestApp,
    w: &World,
    method: Method,
    path: &str,
    body: Option<Value>,
    a_ids: &[Uuid],
) {
    let swaps: Vec<(Uuid, Uuid)> = a_ids.iter().map(|id| (Uuid::new_v4(), *id)).collect();
    let substitute = |text: &str| {
        let mut text = text.to_owned();
        for (unknown_id, a_id) in &swaps {
            text = text.replace(&a_id.to_string(), &unknown_id.to_string());
        }
        text
    };
    let unknown_path = substitute(path);
    let unknown_body = body.as_ref().map(|body| {
        serde_json::from_str::<Value>(&substitute(&body.to_string())).expect("still JSON")
    });
    let foreign = app
        .request(method.clone(), path, Some(&w.b.key), &[], body.as_ref())
        .await;
    let unknown = app
        .request(
            method.clone(),
            &unknown_path,
            Some(&w.b.key),
            &[],
            unknown_body.as_ref(),
        )
        .await;
    assert_like_unknown(&format!("{method} {path}"), &foreign, &unknown, &swaps, w);
}

fn list_ids(reply: &Reply) -> Vec<Uuid> {
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {reply:?}"))
        .iter()
        .map(|row| {
            row["id"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok())
                .unwrap_or_else(|| panic!("row without id: {row}"))
        })
        .collect()
}

#[tokio::test]
async fn another_tenants_ids_answer_exactly_like_unknown_ids() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let before = snapshot_of_a(&app, &w).await;

    let customer = w.a_customer;
    let product = w.a_product;
    let order = w.a_order;

    probe(
        &app,
        &w,
        Method::GET,
        &format!("/v1/customers/{customer}"),
        None,
        &[customer],
    )
    .await;
    probe(
        &app,
        &w,
        Method::PATCH,
        &format!("/v1/customers/{customer}"),
        Some(json!({ "name": "taken over", "credit_limit": 1 })),
        &[customer],
    )
    .await;
    probe(
        &app,
        &w,
        Method::PATCH,
        &format!("/v1/customers/{customer}"),
        Some(json!({ "credit_limit": 99_999_999 })),
        &[customer],
    )
    .await;
    probe(
        &app,
        &w,
        Method::GET,
        &format!("/v1/customers/{customer}/ledger"),
        None,
        &[customer],
    )
    .await;
    probe(
        &app,
        &w,
        Method::GET,
        &format!("/v1/products/{product}"),
        None,
        &[product],
    )
    .await;
    probe(
        &app,
        &w,
        Method::PATCH,
        &format!("/v1/products/{product}"),
        Some(json!({ "name": "taken over", "price": 1 })),
        &[product],
    )
    .await;
    for delta in [-5, 25] {
        probe(
            &app,
            &w,
            Method::POST,
            &format!("/v1/products/{product}/stock-adjustments"),
            Some(json!({ "delta": delta, "reason": "not yours" })),
            &[product],
        )
        .await;
    }

    // Purchases: A's customer, A's product, or both.
    let purchase = |customer: Uuid, product: Uuid| json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] });
    probe(
        &app,
        &w,
        Method::POST,
        "/v1/purchases",
        Some(purchase(w.b_customer, product)),
        &[product],
    )
    .await;
    probe(
        &app,
        &w,
        Method::POST,
        "/v1/purchases",
        Some(purchase(customer, w.b_product)),
        &[customer],
    )
    .await;
    probe(
        &app,
        &w,
        Method::POST,
        "/v1/purchases",
        Some(purchase(customer, product)),
        &[customer, product],
    )
    .await;
    probe(
        &app,
        &w,
        Method::POST,
        "/v1/purchases",
        Some(json!({ "customer_id": w.b_customer, "items": [
            { "product_id": w.b_product, "quantity": 1 },
            { "product_id": product, "quantity": 1 },
        ] })),
        &[product],
    )
    .await;

    probe(
        &app,
        &w,
        Method::POST,
        "/v1/payments",
        Some(json!({ "customer_id": customer, "amount": 100 })),
        &[customer],
    )
    .await;

    probe(
        &app,
        &w,
        Method::GET,
        &format!("/v1/orders/{order}"),
        None,
        &[order],
    )
    .await;
    probe(
        &app,
        &w,
        Method::POST,
        &format!("/v1/orders/{order}/returns"),
        Some(json!({ "items": [{ "product_id": product, "quantity": 1 }] })),
        &[order, product],
    )
    .await;
    probe(
        &app,
        &w,
        Method::POST,
        &format!("/v1/orders/{order}/returns"),
        Some(json!({ "items": [{ "product_id": w.b_product, "quantity": 1 }] })),
        &[order],
    )
    .await;
    // B's own order, returning A's product: not part of the order either way.
    let b_order = w.b_order;
    let foreign = app
        .post(
            &format!("/v1/orders/{b_order}/returns"),
            &w.b.key,
            json!({ "items": [{ "product_id": product, "quantity": 1 }] }),
        )
        .await;
    let unknown_product = Uuid::new_v4();
    let unknown = app
        .post(
            &format!("/v1/orders/{b_order}/returns"),
            &w.b.key,
            json!({ "items": [{ "product_id": unknown_product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(foreign.status, unknown.status, "{foreign:?} vs {unknown:?}");
    assert_eq!(foreign.code(), unknown.code());
    assert!(foreign.status >= 400, "{foreign:?}");
    assert_eq!(
        foreign.body.to_string(),
        unknown
            .body
            .to_string()
            .replace(&unknown_product.to_string(), &product.to_string())
    );
    assert_no_a_data(
        "return of A's product on B's order",
        &foreign,
        &w,
        &[product],
    );

    // The same again, with an Idempotency-Key: still nothing of A.
    let keyed = app
        .post_once(
            "/v1/purchases",
            &w.b.key,
            "iso-probe-1",
            purchase(customer, product),
        )
        .await;
    assert_eq!(keyed.status, 404, "{keyed:?}");
    assert_eq!(keyed.code(), "not_found");
    assert_no_a_data("keyed purchase", &keyed, &w, &[customer, product]);

    // Orders filtered by A's customer: the same (empty) list as for an
    // unknown customer.
    let foreign = app
        .get(&format!("/v1/orders?customer_id={customer}"), &w.b.key)
        .await;
    let unknown = app
        .get(
            &format!("/v1/orders?customer_id={}", Uuid::new_v4()),
            &w.b.key,
        )
        .await;
    assert_eq!(foreign.status, 200, "{foreign:?}");
    assert_eq!(foreign.status, unknown.status);
    assert_eq!(foreign.body, unknown.body);
    assert_eq!(foreign.body, json!({ "data": [], "next_cursor": null }));

    // Revoking A's key: 404 like an unknown key id, and the key still works.
    probe(
        &app,
        &w,
        Method::DELETE,
        &format!("/v1/api-keys/{}", w.a_key_id),
        None,
        &[w.a_key_id],
    )
    .await;
    let direct = app
        .delete(&format!("/v1/api-keys/{}", w.a_key_id), &w.b.key)
        .await;
    assert_eq!(direct.status, 404, "{direct:?}");
    assert_eq!(direct.code(), "not_found");
    let still = app.get("/v1/customers", &w.a_key2).await;
    assert_eq!(still.status, 200, "A's key was revoked by B: {still:?}");
    assert!(list_ids(&still).contains(&w.a_customer));

    // Nothing of A changed: balances, stock, ledger, orders, keys.
    let after = snapshot_of_a(&app, &w).await;
    assert_eq!(before, after, "B's attempts changed A's data");
    let a_product_now = app.get(&format!("/v1/products/{product}"), &w.a.key).await;
    assert_eq!(a_product_now.body["stock"], 40 - 6 + 1);
    assert_eq!(a_product_now.body["price"], 700);
    assert_eq!(a_product_now.body["name"], A_PRODUCT_NAME);
    let a_customer_now = app
        .get(&format!("/v1/customers/{customer}"), &w.a.key)
        .await;
    assert_eq!(a_customer_now.body["balance"], 6 * 700 - 500 - 700);
    assert_eq!(a_customer_now.body["credit_limit"], 100_000);
    assert_eq!(a_customer_now.body["name"], A_CUSTOMER_NAME);

    // And B wrote nothing either (all those attempts were refusals).
    let sql = app.sql().await;
    for (table, expected) in [
        ("orders", 1_i64),
        ("credit_ledger", 2),
        ("stock_adjustments", 0),
        ("returns", 0),
    ] {
        let count: i64 = sql
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE business_id = $1"),
                &[&w.b.id],
            )
            .await
            .expect("count")
            .get(0);
        assert_eq!(count, expected, "B's rows in {table}");
    }
}

#[tokio::test]
async fn lists_hold_only_the_callers_rows() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;

    for path in [
        "/v1/customers",
        "/v1/products",
        "/v1/orders",
        "/v1/api-keys",
    ] {
        let b_rows = app.get(&format!("{path}?limit=200"), &w.b.key).await;
        let a_rows = app.get(&format!("{path}?limit=200"), &w.a.key).await;
        let b_ids = list_ids(&b_rows);
        let a_ids = list_ids(&a_rows);
        assert!(!b_ids.is_empty(), "{path}: B sees none of its own rows");
        assert!(!a_ids.is_empty(), "{path}: A sees none of its own rows");
        for id in &b_ids {
            assert!(!a_ids.contains(id), "{path}: {id} listed for both");
        }
        assert_no_a_data(path, &b_rows, &w, &[]);
        let a_text = a_rows.body.to_string();
        for id in [w.b_customer, w.b_product, w.b_order, w.b_key_id, w.b.id] {
            assert!(!a_text.contains(&id.to_string()), "{path}: A sees B's {id}");
        }
    }
    // Each list holds exactly the tenant's own rows.
    let b_customers = list_ids(&app.get("/v1/customers", &w.b.key).await);
    assert_eq!(b_customers.len(), 2);
    assert!(b_customers.contains(&w.b_customer));
    let a_customers = list_ids(&app.get("/v1/customers", &w.a.key).await);
    assert_eq!(a_customers, w.a_customers);
    let b_orders = list_ids(&app.get("/v1/orders", &w.b.key).await);
    assert_eq!(b_orders, vec![w.b_order]);
    let a_orders = list_ids(&app.get("/v1/orders", &w.a.key).await);
    let mut newest_first = w.a_orders.clone();
    newest_first.reverse();
    assert_eq!(a_orders, newest_first);
    let b_keys = list_ids(&app.get("/v1/api-keys", &w.b.key).await);
    assert_eq!(b_keys.len(), 2, "B's first key and the one it added");
    assert!(b_keys.contains(&w.b_key_id));
    assert!(!b_keys.contains(&w.a_key_id));
    let a_keys = list_ids(&app.get("/v1/api-keys", &w.a.key).await);
    assert!(a_keys.contains(&w.a_key_id));
    // B's ledger shows only B's entries.
    let b_ledger = app
        .get(&format!("/v1/customers/{}/ledger", w.b_customer), &w.b.key)
        .await;
    assert_eq!(b_ledger.status, 200, "{b_ledger:?}");
    assert_eq!(b_ledger.body["data"].as_array().map(Vec::len), Some(2));
    assert_no_a_data("B's ledger", &b_ledger, &w, &[]);
}

#[tokio::test]
async fn a_cursor_of_one_tenant_reveals_nothing_to_another() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;

    for path in [
        "/v1/customers",
        "/v1/products",
        "/v1/orders",
        "/v1/api-keys",
    ] {
        let first = app.get(&format!("{path}?limit=1"), &w.a.key).await;
        assert_eq!(first.status, 200, "{first:?}");
        let cursor = first.body["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: A has more than one row: {first:?}"))
            .to_owned();
        // A's own next page works.
        let own = app
            .get(&format!("{path}?limit=1&cursor={cursor}"), &w.a.key)
            .await;
        assert_eq!(list_ids(&own).len(), 1, "{own:?}");
        // B with A's cursor: a valid position, but only B's rows (or a
        // refusal), never A's.
        let b_page = app
            .get(&format!("{path}?limit=200&cursor={cursor}"), &w.b.key)
            .await;
        if b_page.status == 200 {
            let b_ids = list_ids(&b_page);
            let all_b = list_ids(&app.get(&format!("{path}?limit=200"), &w.b.key).await);
            for id in &b_ids {
                assert!(all_b.contains(id), "{path}: {id} is not B's");
            }
        } else {
            assert_eq!(b_page.status, 422, "{b_page:?}");
            assert_eq!(b_page.code(), "validation_failed");
        }
        assert_no_a_data(&format!("{path} with A's cursor"), &b_page, &w, &[]);
    }

    // A's ledger cursor on A's customer: still 404 for B.
    let ledger = app
        .get(
            &format!("/v1/customers/{}/ledger?limit=1", w.a_customer),
            &w.a.key,
        )
        .await;
    let cursor = ledger.body["next_cursor"]
        .as_str()
        .expect("A's ledger has several entries")
        .to_owned();
    let b_try = app
        .get(
            &format!("/v1/customers/{}/ledger?cursor={cursor}", w.a_customer),
            &w.b.key,
        )
        .await;
    assert_eq!(b_try.status, 404, "{b_try:?}");
    assert_eq!(b_try.code(), "not_found");
    assert_no_a_data("A's ledger cursor", &b_try, &w, &[w.a_customer]);
    // On B's own customer, A's ledger cursor yields only B's entries.
    let b_own = app
        .get(
            &format!("/v1/customers/{}/ledger?cursor={cursor}", w.b_customer),
            &w.b.key,
        )
        .await;
    assert_eq!(b_own.status, 200, "{b_own:?}");
    assert_no_a_data("B's ledger with A's cursor", &b_own, &w, &[]);
    for entry in b_own.body["data"].as_array().expect("a list") {
        if let Some(order) = entry["order_id"].as_str() {
            assert_eq!(order, w.b_order.to_string());
        }
    }
}

#[tokio::test]
async fn a_body_field_query_or_header_never_chooses_the_tenant() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let sql = app.sql().await;
    let count_a = || async {
        let row = sql
            .query_one(
                "SELECT (SELECT count(*) FROM customers WHERE business_id = $1),
                        (SELECT count(*) FROM products WHERE business_id = $1),
                        (SELECT count(*) FROM orders WHERE business_id = $1)",
                &[&w.a.id],
            )
            .await
            .expect("counts");
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
        )
    };
    let a_before = count_a().await;

    let a_id = w.a.id.to_string();
    let attempts = [
        (
            "/v1/customers",
            json!({ "name": "Planted", "credit_limit": 10, "business_id": a_id }),
        ),
        (
            "/v1/customers?business_id=",
            json!({ "name": "Planted", "credit_limit": 10 }),
        ),
        (
            "/v1/products",
            json!({ "name": "Planted", "price": 1, "stock": 1, "business_id": a_id }),
        ),
        (
            "/v1/purchases",
            json!({ "customer_id": w.b_customer, "business_id": a_id,
                    "items": [{ "product_id": w.b_product, "quantity": 1 }] }),
        ),
        (
            "/v1/purchases",
            json!({ "customer_id": w.a_customer, "business_id": a_id,
                    "items": [{ "product_id": w.a_product, "quantity": 1 }] }),
        ),
        (
            "/v1/payments",
            json!({ "customer_id": w.a_customer, "amount": 1, "business_id": a_id }),
        ),
    ];
    for (path, body) in attempts {
        let path = if path.ends_with('=') {
            format!("{path}{a_id}")
        } else {
            path.to_owned()
        };
        for headers in [
            &[][..],
            &[
                ("X-Business-Id", a_id.as_str()),
                ("Business-Id", a_id.as_str()),
            ][..],
        ] {
            let reply = app
                .request(Method::POST, &path, Some(&w.b.key), headers, Some(&body))
                .await;
            assert_no_a_data(&path, &reply, &w, &[w.a.id, w.a_customer, w.a_product]);
            match reply.status {
                201 => {
                    // Landed in B: B sees it, A does not.
                    if let Some(id) = reply.body["id"].as_str() {
                        let resource = if path.starts_with("/v1/customers") {
                            "customers"
                        } else if path.starts_with("/v1/products") {
                            "products"
                        } else if path.starts_with("/v1/purchases") {
                            "orders"
                        } else {
                            continue;
                        };
                        let as_b = app.get(&format!("/v1/{resource}/{id}"), &w.b.key).await;
                        assert_eq!(as_b.status, 200, "{path} did not land in B: {as_b:?}");
                        let as_a = app.get(&format!("/v1/{resource}/{id}"), &w.a.key).await;
                        assert_eq!(as_a.status, 404, "{path} landed in A: {as_a:?}");
                    }
                }
                400 => assert_eq!(reply.code(), "malformed_request"),
                404 => assert_eq!(reply.code(), "not_found"),
                other => panic!("{path}: unexpected {other}: {reply:?}"),
            }
        }
    }
    assert_eq!(count_a().await, a_before, "something landed in A");
    let a_customer = app
        .get(&format!("/v1/customers/{}", w.a_customer), &w.a.key)
        .await;
    assert_eq!(a_customer.body["balance"], 6 * 700 - 500 - 700);
}

#[tokio::test]
async fn row_level_security_hides_other_tenants_in_sql() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let mut sql = app.sql().await;

    let tables = [
        "customers",
        "products",
        "orders",
        "order_items",
        "credit_ledger",
        "stock_adjustments",
        "returns",
        "return_items",
        "api_keys",
        "idempotency_keys",
        "customer_changes",
    ];
    let count = |table: &'static str| {
        let sql = &sql;
        async move {
            sql.query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .unwrap_or_else(|error| panic!("count {table}: {error}"))
                .get::<_, i64>(0)
        }
    };
    // As the superuser everything is there (the test is not vacuous).
    for table in ["customers", "products", "orders", "credit_ledger"] {
        assert!(count(table).await > 0, "{table} is empty");
    }

    sql.batch_execute("SET ROLE ontab_app")
        .await
        .expect("become ontab_app");
    // No tenant at all: nothing is visible.
    for table in tables {
        assert_eq!(count(table).await, 0, "{table} visible without a tenant");
    }
    assert_eq!(count("businesses").await, 0);
    // An empty tenant setting is no tenant either.
    sql.batch_execute("SELECT set_config('ontab.business_id', '', false)")
        .await
        .expect("empty tenant");
    for table in tables {
        assert_eq!(
            count(table).await,
            0,
            "{table} visible with an empty tenant"
        );
    }

    sql.batch_execute("RESET ROLE").await.expect("reset role");

    // Tenant B, as the server sets it (SET LOCAL, which a distributed
    // PostgreSQL forwards to its nodes): only B's rows. One transaction per
    // statement, so a refusal does not abort the next.
    let b = w.b.id;
    for table in tables {
        let foreign = as_tenant_count(
            &mut sql,
            b,
            &format!("SELECT count(*) FROM {table} WHERE business_id <> '{b}'"),
        )
        .await;
        assert_eq!(foreign, 0, "{table}: B sees other tenants' rows");
    }
    for (table, expected) in [
        ("customers", 2),
        ("products", 1),
        ("orders", 1),
        ("credit_ledger", 2),
        ("businesses", 1),
    ] {
        let seen = as_tenant_count(&mut sql, b, &format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(seen, expected, "{table} as B");
    }
    let seen = as_tenant_count(
        &mut sql,
        b,
        &format!(
            "SELECT count(*) FROM customers WHERE id = '{}'",
            w.a_customer
        ),
    )
    .await;
    assert_eq!(seen, 0);

    // Writing a row of A as B is refused by the policy.
    let a = w.a.id;
    for insert in [
        format!(
            "INSERT INTO customers (business_id, id, name, credit_limit)
             VALUES ('{a}', '{}', 'Planted', 10)",
            Uuid::new_v4()
        ),
        format!(
            "INSERT INTO products (business_id, id, name, price, stock, initial_stock)
             VALUES ('{a}', '{}', 'Planted', 1, 1, 1)",
            Uuid::new_v4()
        ),
    ] {
        let refused = as_tenant_execute(&mut sql, b, &insert)
            .await
            .expect_err("RLS must refuse a row of another tenant");
        assert_eq!(
            refused.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{refused:?}"
        );
    }
    // Updating A's rows as B touches nothing.
    for update in [
        format!("UPDATE products SET price = 0 WHERE id = '{}'", w.a_product),
        format!(
            "UPDATE customers SET credit_limit = 0 WHERE id = '{}'",
            w.a_customer
        ),
    ] {
        let updated = as_tenant_execute(&mut sql, b, &update)
            .await
            .expect("update runs");
        assert_eq!(updated, 0);
    }
    // Moving B's own row to A is refused: by the policy, or on Citus
    // before it, since a row never changes its distribution value there.
    let moved = as_tenant_execute(
        &mut sql,
        b,
        &format!(
            "UPDATE customers SET business_id = '{a}' WHERE id = '{}'",
            w.b_customer
        ),
    )
    .await
    .expect_err("a row cannot change tenant");
    let refusals: &[&SqlState] = if crate::helpers::citus_url().is_some() {
        &[
            &SqlState::INSUFFICIENT_PRIVILEGE,
            &SqlState::FEATURE_NOT_SUPPORTED,
        ]
    } else {
        &[&SqlState::INSUFFICIENT_PRIVILEGE]
    };
    assert!(
        moved.code().is_some_and(|code| refusals.contains(&code)),
        "{moved:?}"
    );
    // A row of B's own is accepted: the refusal above was the policy.
    let own = as_tenant_execute(
        &mut sql,
        b,
        &format!(
            "INSERT INTO customers (business_id, id, name, credit_limit)
             VALUES ('{b}', '{}', 'Own', 10)",
            Uuid::new_v4()
        ),
    )
    .await
    .expect("B may insert its own rows");
    assert_eq!(own, 1);

    // As superuser again, A's data is untouched.
    let a_product = sql
        .query_one(
            "SELECT stock, price FROM products WHERE id = $1",
            &[&w.a_product],
        )
        .await
        .expect("A's product");
    assert_eq!(a_product.get::<_, i64>(0), 40 - 6 + 1);
    assert_ne!(a_product.get::<_, i64>(1), 0, "A's price untouched");
    let a_customers: i64 = sql
        .query_one(
            "SELECT count(*) FROM customers WHERE business_id = $1",
            &[&w.a.id],
        )
        .await
        .expect("A's customers")
        .get(0);
    assert_eq!(a_customers, 3);
}

/// Runs `statement` in a transaction of its own as `business`'s tenant
/// (`as_tenant`), committing it when it succeeds.
async fn as_tenant_execute(
    sql: &mut tokio_postgres::Client,
    business: Uuid,
    statement: &str,
) -> Result<u64, tokio_postgres::Error> {
    let tx = sql.transaction().await.expect("begin");
    as_tenant(&tx, business).await;
    let done = tx.execute(statement, &[]).await?;
    tx.commit().await?;
    Ok(done)
}

/// The count `statement` answers as `business`'s tenant.
async fn as_tenant_count(sql: &mut tokio_postgres::Client, business: Uuid, statement: &str) -> i64 {
    let tx = sql.transaction().await.expect("begin");
    as_tenant(&tx, business).await;
    let count = tx
        .query_one(statement, &[])
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"))
        .get(0);
    tx.commit().await.expect("commit");
    count
}
