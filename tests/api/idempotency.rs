//! The Idempotency-Key contract on the four money- and stock-moving POSTs
//! (purchases, payments, returns, stock adjustments): a repeat replays the
//! first answer and does nothing, a different request under the same key is
//! refused, keys are per business, definitive refusals are replayed too,
//! concurrent duplicates take effect once, and malformed keys are refused.

use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Business, Reply, TestApp};

const REPLAYED: &str = "idempotent-replayed";

/// One business with a customer owing something, a product, and an order
/// to return goods against.
struct Shop {
    biz: Business,
    customer: Uuid,
    product: Uuid,
    order: Uuid,
}

async fn shop(app: &TestApp, name: &str) -> Shop {
    let biz = app.business(name).await;
    let customer = app.customer(&biz, 1_000_000).await;
    let product = app.product(&biz, 250, 100).await;
    let order = app.purchase(&biz, customer, &[(product, 10)]).await;
    assert_eq!(order.status, 201, "{order:?}");
    Shop {
        biz,
        customer,
        product,
        order: order.id(),
    }
}

/// What the four use cases write, counted for one business as the
/// superuser (row level security does not hide anything from it).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Effects {
    orders: i64,
    order_items: i64,
    ledger: i64,
    adjustments: i64,
    returns: i64,
    stock: i64,
    balance: i64,
}

async fn effects(app: &TestApp, shop: &Shop) -> Effects {
    let sql = app.sql().await;
    let row = sql
        .query_one(
            "SELECT (SELECT count(*) FROM orders WHERE business_id = $1),
                    (SELECT count(*) FROM order_items WHERE business_id = $1),
                    (SELECT count(*) FROM credit_ledger WHERE business_id = $1),
                    (SELECT count(*) FROM stock_adjustments WHERE business_id = $1),
                    (SELECT count(*) FROM returns WHERE business_id = $1),
                    (SELECT stock FROM products WHERE business_id = $1 AND id = $2),
                    (SELECT coalesce(sum(amount), 0)::bigint FROM credit_ledger
                      WHERE business_id = $1 AND customer_id = $3)",
            &[&shop.biz.id, &shop.product, &shop.customer],
        )
        .await
        .expect("effect counts");
    Effects {
        orders: row.get(0),
        order_items: row.get(1),
        ledger: row.get(2),
        adjustments: row.get(3),
        returns: row.get(4),
        stock: row.get(5),
        balance: row.get(6),
    }
}

/// A POST with a raw (already serialized) JSON body, to vary whitespace and
/// key order byte for byte.
async fn post_raw(app: &TestApp, path: &str, key: &str, idempotency_key: &str, raw: &str) -> Reply {
    let response = app
        .http
        .post(format!("{}{path}", app.base_url))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("Idempotency-Key", idempotency_key)
        .body(raw.to_owned())
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body read");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    assert!(
        status < 500 || status == 503,
        "server error {status}: {body}"
    );
    Reply {
        status,
        headers,
        body,
    }
}

/// The id of what a successful request created (a stock adjustment answers
/// `{"product", "adjustment"}`).
fn effect_id(reply: &Reply) -> String {
    let id = if reply.body["adjustment"].is_object() {
        &reply.body["adjustment"]["id"]
    } else {
        &reply.body["id"]
    };
    id.as_str()
        .unwrap_or_else(|| panic!("no id in {reply:?}"))
        .to_owned()
}

fn replayed(reply: &Reply) -> bool {
    match reply.headers.get(REPLAYED) {
        None => false,
        Some(value) => {
            assert_eq!(value, "true", "{reply:?}");
            true
        }
    }
}

fn assert_replay_of(first: &Reply, again: &Reply, what: &str) {
    assert_eq!(again.status, first.status, "{what}: {again:?}");
    assert_eq!(again.body, first.body, "{what}: replay differs");
    assert_eq!(
        again.headers.get("content-type"),
        first.headers.get("content-type"),
        "{what}"
    );
    assert!(replayed(again), "{what}: replay not marked: {again:?}");
}

/// The four keyed endpoints for `shop`: path, a body, and another body for
/// the same path.
fn endpoints(shop: &Shop) -> Vec<(String, Value, Value)> {
    vec![
        (
            "/v1/purchases".to_owned(),
            json!({ "customer_id": shop.customer,
                    "items": [{ "product_id": shop.product, "quantity": 2 }] }),
            json!({ "customer_id": shop.customer,
                    "items": [{ "product_id": shop.product, "quantity": 3 }] }),
        ),
        (
            "/v1/payments".to_owned(),
            json!({ "customer_id": shop.customer, "amount": 300 }),
            json!({ "customer_id": shop.customer, "amount": 301 }),
        ),
        (
            format!("/v1/orders/{}/returns", shop.order),
            json!({ "items": [{ "product_id": shop.product, "quantity": 1 }] }),
            json!({ "items": [{ "product_id": shop.product, "quantity": 2 }] }),
        ),
        (
            format!("/v1/products/{}/stock-adjustments", shop.product),
            json!({ "delta": -4, "reason": "damaged" }),
            json!({ "delta": -4, "reason": "lost" }),
        ),
    ]
}

/// The same JSON with keys in reverse order and generous whitespace.
fn reshuffled(value: &Value, depth: usize) -> String {
    let pad = " ".repeat(depth + 1);
    match value {
        Value::Object(map) => {
            let members: Vec<String> = map
                .iter()
                .rev()
                .map(|(key, value)| {
                    format!(
                        "\n{pad}{} :  {}",
                        Value::String(key.clone()),
                        reshuffled(value, depth + 1)
                    )
                })
                .collect();
            format!("{{ {}\n}}\t", members.join(" ,"))
        }
        Value::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| reshuffled(item, depth + 1))
                .collect();
            format!("[ {} ]", items.join(" ,\r\n"))
        }
        other => other.to_string(),
    }
}

#[tokio::test]
async fn a_repeat_replays_the_first_answer_and_does_nothing_again() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "Replays").await;

    for (index, (path, body, other_body)) in endpoints(&shop).into_iter().enumerate() {
        let key = format!("replay-{index}");
        let before = effects(&app, &shop).await;
        let first = app
            .post_once(&path, &shop.biz.key, &key, body.clone())
            .await;
        assert_eq!(first.status, 201, "{path}: {first:?}");
        assert!(!replayed(&first), "{path}: first answer marked replayed");
        let done = effects(&app, &shop).await;
        assert_ne!(done, before, "{path}: the first request did nothing");

        // Same key, same body: the same answer, nothing new.
        let again = app
            .post_once(&path, &shop.biz.key, &key, body.clone())
            .await;
        assert_replay_of(&first, &again, &path);
        // The same body with other key order and whitespace is the same
        // request.
        let raw = reshuffled(&body, 0);
        assert_ne!(raw, body.to_string());
        let shuffled = post_raw(&app, &path, &shop.biz.key, &key, &raw).await;
        assert_replay_of(&first, &shuffled, &format!("{path} (reshuffled JSON)"));
        assert_eq!(
            effects(&app, &shop).await,
            done,
            "{path}: a replay did something"
        );

        // Same key, another body: refused, nothing done.
        let reused = app
            .post_once(&path, &shop.biz.key, &key, other_body.clone())
            .await;
        assert_eq!(reused.status, 409, "{path}: {reused:?}");
        assert_eq!(reused.code(), "idempotency_key_reused");
        assert!(!reused.body.to_string().contains(&effect_id(&first)));
        // An extra member is another body too (and refused as such, or
        // malformed; never a replay, never an effect).
        let mut extra = body.clone();
        extra["note"] = json!("x");
        let extra = app.post_once(&path, &shop.biz.key, &key, extra).await;
        assert!(
            matches!(extra.code(), "idempotency_key_reused" | "malformed_request"),
            "{path}: {extra:?}"
        );
        assert!(!replayed(&extra));
        assert_eq!(
            effects(&app, &shop).await,
            done,
            "{path}: a refusal did something"
        );

        // And the original still replays afterwards.
        let later = app
            .post_once(&path, &shop.biz.key, &key, body.clone())
            .await;
        assert_replay_of(&first, &later, &format!("{path} after a refusal"));

        // Without a key the same request runs again: the key is what
        // dedupes, not the body.
        let unkeyed = app.post(&path, &shop.biz.key, body.clone()).await;
        assert_eq!(unkeyed.status, 201, "{path}: {unkeyed:?}");
        assert_ne!(effect_id(&unkeyed), effect_id(&first));
        assert!(!replayed(&unkeyed));
        // A fresh key also runs it again.
        let fresh = app
            .post_once(&path, &shop.biz.key, &format!("{key}-fresh"), body.clone())
            .await;
        assert_eq!(fresh.status, 201, "{path}: {fresh:?}");
        assert_ne!(effect_id(&fresh), effect_id(&first));
    }
}

#[tokio::test]
async fn a_key_belongs_to_one_request_across_endpoints() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "Routes").await;
    let second_order = app
        .purchase(&shop.biz, shop.customer, &[(shop.product, 5)])
        .await;
    assert_eq!(second_order.status, 201, "{second_order:?}");
    let second_order = second_order.id();

    let first = app
        .post_once(
            "/v1/payments",
            &shop.biz.key,
            "one-key",
            json!({ "customer_id": shop.customer, "amount": 100 }),
        )
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let done = effects(&app, &shop).await;

    // The same key on every other endpoint is another request.
    let mut others = endpoints(&shop);
    others.retain(|(path, _, _)| path != "/v1/payments");
    for (path, body, _) in others {
        let reply = app.post_once(&path, &shop.biz.key, "one-key", body).await;
        assert_eq!(reply.status, 409, "{path}: {reply:?}");
        assert_eq!(reply.code(), "idempotency_key_reused");
    }
    assert_eq!(effects(&app, &shop).await, done);

    // Returns on two orders with one key: different paths, different
    // requests.
    let body = json!({ "items": [{ "product_id": shop.product, "quantity": 1 }] });
    let on_first = app
        .post_once(
            &format!("/v1/orders/{}/returns", shop.order),
            &shop.biz.key,
            "return-key",
            body.clone(),
        )
        .await;
    assert_eq!(on_first.status, 201, "{on_first:?}");
    let on_second = app
        .post_once(
            &format!("/v1/orders/{second_order}/returns"),
            &shop.biz.key,
            "return-key",
            body,
        )
        .await;
    assert_eq!(on_second.status, 409, "{on_second:?}");
    assert_eq!(on_second.code(), "idempotency_key_reused");

    // Lines in another order are another request.
    let other = app.product(&shop.biz, 100, 100).await;
    let lines = |a: Uuid, b: Uuid| {
        json!({ "customer_id": shop.customer, "items": [
            { "product_id": a, "quantity": 1 }, { "product_id": b, "quantity": 1 } ] })
    };
    let first = app
        .post_once(
            "/v1/purchases",
            &shop.biz.key,
            "lines-key",
            lines(shop.product, other),
        )
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let swapped = app
        .post_once(
            "/v1/purchases",
            &shop.biz.key,
            "lines-key",
            lines(other, shop.product),
        )
        .await;
    assert_eq!(swapped.status, 409, "{swapped:?}");
    assert_eq!(swapped.code(), "idempotency_key_reused");
}

#[tokio::test]
async fn keys_are_scoped_per_business() {
    let app = TestApp::spawn().await;
    let a = shop(&app, "Alpha").await;
    let b = shop(&app, "Bravo").await;

    let a_endpoints = endpoints(&a);
    let b_endpoints = endpoints(&b);
    for ((path_a, body_a, _), (path_b, body_b, _)) in a_endpoints.into_iter().zip(b_endpoints) {
        let key = "shared-key-across-businesses";
        let key = format!("{key}-{}", path_a.split('/').nth(2).unwrap_or("x"));
        let before_b = effects(&app, &b).await;
        let first_a = app
            .post_once(&path_a, &a.biz.key, &key, body_a.clone())
            .await;
        assert_eq!(first_a.status, 201, "{path_a}: {first_a:?}");
        let after_a = effects(&app, &a).await;
        // B with the same key and its own request: runs, not a replay of A,
        // not a conflict.
        let first_b = app
            .post_once(&path_b, &b.biz.key, &key, body_b.clone())
            .await;
        assert_eq!(first_b.status, 201, "{path_b}: {first_b:?}");
        assert!(!replayed(&first_b), "{path_b}: B got A's answer");
        assert_ne!(effect_id(&first_b), effect_id(&first_a));
        assert_ne!(
            effects(&app, &b).await,
            before_b,
            "{path_b}: B's did nothing"
        );
        assert_eq!(effects(&app, &a).await, after_a, "{path_b}: B's touched A");
        // B sending exactly A's request (A's ids) under A's key string: not
        // a replay of A's answer; A's ids are unknown to B.
        let foreign = app
            .post_once(&path_a, &b.biz.key, &format!("{key}-2"), body_a.clone())
            .await;
        assert_eq!(foreign.status, 404, "{path_a}: {foreign:?}");
        let copied = app
            .post_once(&path_a, &b.biz.key, &key, body_a.clone())
            .await;
        assert_ne!(copied.status, 201, "{path_a}: B replayed A's answer");
        assert!(!copied.body.to_string().contains(&effect_id(&first_a)));
        // Each replays its own.
        let again_a = app.post_once(&path_a, &a.biz.key, &key, body_a).await;
        assert_replay_of(&first_a, &again_a, &path_a);
        let again_b = app.post_once(&path_b, &b.biz.key, &key, body_b).await;
        assert_replay_of(&first_b, &again_b, &path_b);
        assert_eq!(effects(&app, &a).await, after_a);
    }
}

#[tokio::test]
async fn a_definitive_refusal_is_stored_and_replayed_after_the_world_changes() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "Refusals").await;
    let scarce = app.product(&shop.biz, 100, 2).await;

    // insufficient_stock, then stock arrives: the replay is still the 409.
    let body = json!({ "customer_id": shop.customer,
                       "items": [{ "product_id": scarce, "quantity": 5 }] });
    let first = app
        .post_once("/v1/purchases", &shop.biz.key, "short", body.clone())
        .await;
    assert_eq!(first.status, 409, "{first:?}");
    assert_eq!(first.code(), "insufficient_stock");
    assert_eq!(first.body["available"], 2);
    let restock = app
        .post(
            &format!("/v1/products/{scarce}/stock-adjustments"),
            &shop.biz.key,
            json!({ "delta": 10, "reason": "delivery" }),
        )
        .await;
    assert_eq!(restock.status, 201, "{restock:?}");
    let before = effects(&app, &shop).await;
    let again = app
        .post_once("/v1/purchases", &shop.biz.key, "short", body.clone())
        .await;
    assert_replay_of(&first, &again, "insufficient_stock replay");
    assert_eq!(
        again.body["available"], 2,
        "the stored answer, not a new one"
    );
    assert_eq!(effects(&app, &shop).await, before);
    let stock = app
        .get(&format!("/v1/products/{scarce}"), &shop.biz.key)
        .await;
    assert_eq!(stock.body["stock"], 12);
    // The same request under a new key now succeeds.
    let fresh = app
        .post_once("/v1/purchases", &shop.biz.key, "short-2", body)
        .await;
    assert_eq!(fresh.status, 201, "{fresh:?}");

    // credit_limit_exceeded, then the limit is raised.
    let tight = app.customer(&shop.biz, 100).await;
    let body = json!({ "customer_id": tight,
                       "items": [{ "product_id": shop.product, "quantity": 1 }] });
    let first = app
        .post_once("/v1/purchases", &shop.biz.key, "over-limit", body.clone())
        .await;
    assert_eq!(first.status, 409, "{first:?}");
    assert_eq!(first.code(), "credit_limit_exceeded");
    let raised = app
        .patch(
            &format!("/v1/customers/{tight}"),
            &shop.biz.key,
            json!({ "credit_limit": 1_000_000 }),
        )
        .await;
    assert_eq!(raised.status, 200, "{raised:?}");
    let again = app
        .post_once("/v1/purchases", &shop.biz.key, "over-limit", body)
        .await;
    assert_replay_of(&first, &again, "credit_limit_exceeded replay");

    // payment_exceeds_balance, then the customer buys more.
    let payer = app.customer(&shop.biz, 1_000_000).await;
    let body = json!({ "customer_id": payer, "amount": 500 });
    let first = app
        .post_once("/v1/payments", &shop.biz.key, "overpay", body.clone())
        .await;
    assert_eq!(first.status, 409, "{first:?}");
    assert_eq!(first.code(), "payment_exceeds_balance");
    let bought = app.purchase(&shop.biz, payer, &[(shop.product, 4)]).await;
    assert_eq!(bought.status, 201, "{bought:?}");
    let again = app
        .post_once("/v1/payments", &shop.biz.key, "overpay", body)
        .await;
    assert_replay_of(&first, &again, "payment_exceeds_balance replay");
    let ledger = app
        .get(&format!("/v1/customers/{payer}/ledger"), &shop.biz.key)
        .await;
    assert_eq!(ledger.body["data"].as_array().map(Vec::len), Some(1));

    // A stock adjustment below zero, then stock arrives.
    let body = json!({ "delta": -50, "reason": "write-off" });
    let path = format!("/v1/products/{scarce}/stock-adjustments");
    let stock_now = app
        .get(&format!("/v1/products/{scarce}"), &shop.biz.key)
        .await;
    assert_eq!(stock_now.body["stock"], 7);
    let first = app
        .post_once(&path, &shop.biz.key, "write-off", body.clone())
        .await;
    assert_eq!(first.status, 409, "{first:?}");
    assert_eq!(first.code(), "insufficient_stock");
    let restock = app
        .post(
            &path,
            &shop.biz.key,
            json!({ "delta": 100, "reason": "delivery" }),
        )
        .await;
    assert_eq!(restock.status, 201, "{restock:?}");
    let again = app.post_once(&path, &shop.biz.key, "write-off", body).await;
    assert_replay_of(&first, &again, "stock adjustment refusal replay");
    let stock_now = app
        .get(&format!("/v1/products/{scarce}"), &shop.biz.key)
        .await;
    assert_eq!(stock_now.body["stock"], 107);

    // return_exceeds_purchase is replayed too.
    let body = json!({ "items": [{ "product_id": shop.product, "quantity": 11 }] });
    let path = format!("/v1/orders/{}/returns", shop.order);
    let first = app
        .post_once(&path, &shop.biz.key, "too-many-back", body.clone())
        .await;
    assert_eq!(first.status, 409, "{first:?}");
    assert_eq!(first.code(), "return_exceeds_purchase");
    let again = app
        .post_once(&path, &shop.biz.key, "too-many-back", body)
        .await;
    assert_replay_of(&first, &again, "return refusal replay");

    // A 404 for an unknown id and a 422 for bad values are definitive too.
    let ghost = Uuid::new_v4();
    let body = json!({ "customer_id": ghost, "amount": 5 });
    let first = app
        .post_once("/v1/payments", &shop.biz.key, "ghost", body.clone())
        .await;
    assert_eq!(first.status, 404, "{first:?}");
    assert_eq!(first.code(), "not_found");
    let again = app
        .post_once("/v1/payments", &shop.biz.key, "ghost", body)
        .await;
    assert_replay_of(&first, &again, "not_found replay");
    let body = json!({ "customer_id": shop.customer, "amount": 0 });
    let first = app
        .post_once("/v1/payments", &shop.biz.key, "zero", body.clone())
        .await;
    assert_eq!(first.status, 422, "{first:?}");
    assert_eq!(first.code(), "validation_failed");
    let again = app
        .post_once("/v1/payments", &shop.biz.key, "zero", body)
        .await;
    assert_replay_of(&first, &again, "validation_failed replay");
}

/// Sends 20 copies of one keyed request at once.
async fn twenty_at_once(
    app: &TestApp,
    path: &str,
    key: &str,
    idem: &str,
    body: &Value,
) -> Vec<Reply> {
    join_all((0..20).map(|_| app.post_once(path, key, idem, body.clone()))).await
}

fn assert_one_answer(replies: &[Reply], what: &str) -> Reply {
    let first = &replies[0];
    for reply in replies {
        assert_eq!(reply.status, first.status, "{what}: {reply:?} vs {first:?}");
        assert_eq!(reply.body, first.body, "{what}: answers differ");
    }
    let fresh = replies.iter().filter(|reply| !replayed(reply)).count();
    assert_eq!(fresh, 1, "{what}: {fresh} answers were not replays");
    Reply {
        status: first.status,
        headers: first.headers.clone(),
        body: first.body.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_take_effect_once() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "Rush").await;

    for (index, (path, body, _)) in endpoints(&shop).into_iter().enumerate() {
        let before = effects(&app, &shop).await;
        let replies =
            twenty_at_once(&app, &path, &shop.biz.key, &format!("rush-{index}"), &body).await;
        let answer = assert_one_answer(&replies, &path);
        assert_eq!(answer.status, 201, "{path}: {answer:?}");
        let after = effects(&app, &shop).await;
        let expected = match index {
            0 => Effects {
                orders: before.orders + 1,
                order_items: before.order_items + 1,
                ledger: before.ledger + 1,
                stock: before.stock - 2,
                balance: before.balance + 500,
                ..before
            },
            1 => Effects {
                ledger: before.ledger + 1,
                balance: before.balance - 300,
                ..before
            },
            2 => Effects {
                returns: before.returns + 1,
                ledger: before.ledger + 1,
                stock: before.stock + 1,
                balance: before.balance - 250,
                ..before
            },
            _ => Effects {
                adjustments: before.adjustments + 1,
                stock: before.stock - 4,
                ..before
            },
        };
        assert_eq!(after, expected, "{path}: not exactly one effect");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_of_a_refusal_answer_alike() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "Rush refusals").await;
    let scarce = app.product(&shop.biz, 100, 3).await;
    let body = json!({ "customer_id": shop.customer,
                       "items": [{ "product_id": scarce, "quantity": 4 }] });
    let before = effects(&app, &shop).await;
    let replies = twenty_at_once(&app, "/v1/purchases", &shop.biz.key, "rush-short", &body).await;
    let answer = assert_one_answer(&replies, "insufficient_stock");
    assert_eq!(answer.status, 409, "{answer:?}");
    assert_eq!(answer.code(), "insufficient_stock");
    assert_eq!(effects(&app, &shop).await, before);

    // Twenty identical purchases that would together exceed the stock: one
    // key, so one sale, and every answer is that sale.
    let body = json!({ "customer_id": shop.customer,
                       "items": [{ "product_id": scarce, "quantity": 3 }] });
    let replies = twenty_at_once(&app, "/v1/purchases", &shop.biz.key, "rush-last", &body).await;
    let answer = assert_one_answer(&replies, "last items");
    assert_eq!(answer.status, 201, "{answer:?}");
    let stock = app
        .get(&format!("/v1/products/{scarce}"), &shop.biz.key)
        .await;
    assert_eq!(stock.body["stock"], 0);
}

#[tokio::test]
async fn malformed_keys_are_refused_before_anything_happens() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "Keys").await;
    let too_long = "k".repeat(256);
    let bad_keys = [
        "",
        too_long.as_str(),
        "tab\there",
        "space inside",
        "clé",
        "ключ",
    ];
    let before = effects(&app, &shop).await;
    for (path, body, _) in endpoints(&shop) {
        for bad in bad_keys {
            let reply = app.post_once(&path, &shop.biz.key, bad, body.clone()).await;
            assert_eq!(reply.status, 422, "{path} with key {bad:?}: {reply:?}");
            assert_eq!(reply.code(), "validation_failed");
            let errors = reply.body["errors"].as_array().expect("errors[]");
            assert!(!errors.is_empty(), "{reply:?}");
            assert!(
                errors
                    .iter()
                    .all(|error| error["field"].is_string() && error["message"].is_string()),
                "{reply:?}"
            );
            assert!(!replayed(&reply));
        }
    }
    assert_eq!(
        effects(&app, &shop).await,
        before,
        "a refused key did something"
    );

    // The bounds are inclusive: 1 and 255 visible ASCII characters work,
    // including punctuation at both ends of the range.
    let longest = "~".repeat(255);
    for (index, good) in ["!", "a", longest.as_str(), "A-z_0.9:~!{}"]
        .into_iter()
        .enumerate()
    {
        let body = json!({ "customer_id": shop.customer, "amount": 1 + index });
        let first = app
            .post_once("/v1/payments", &shop.biz.key, good, body.clone())
            .await;
        assert_eq!(first.status, 201, "key {good:?}: {first:?}");
        let again = app
            .post_once("/v1/payments", &shop.biz.key, good, body)
            .await;
        assert_replay_of(&first, &again, good);
    }
    // Keys are exact strings: case matters.
    let body = json!({ "customer_id": shop.customer, "amount": 10 });
    let lower = app
        .post_once("/v1/payments", &shop.biz.key, "case-key", body.clone())
        .await;
    assert_eq!(lower.status, 201, "{lower:?}");
    let upper = app
        .post_once("/v1/payments", &shop.biz.key, "CASE-KEY", body)
        .await;
    assert_eq!(upper.status, 201, "{upper:?}");
    assert!(!replayed(&upper));
    assert_ne!(upper.body["id"], lower.body["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_different_requests_under_one_key_take_effect_once() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "Rush mixed").await;
    let small = json!({ "customer_id": shop.customer, "amount": 100 });
    let large = json!({ "customer_id": shop.customer, "amount": 200 });
    let before = effects(&app, &shop).await;
    let replies = join_all((0..20).map(|i| {
        let body = if i % 2 == 0 {
            small.clone()
        } else {
            large.clone()
        };
        let key = shop.biz.key.clone();
        let app = &app;
        async move {
            let reply = app
                .post_once("/v1/payments", &key, "mixed", body.clone())
                .await;
            (body, reply)
        }
    }))
    .await;
    let winners: Vec<&(Value, Reply)> = replies
        .iter()
        .filter(|(_, reply)| reply.status == 201)
        .collect();
    let (winning_body, winner) = winners.first().expect("one request took effect");
    for (body, reply) in &replies {
        if body == winning_body {
            assert_eq!(reply.status, 201, "{reply:?}");
            assert_eq!(reply.body, winner.body, "the winner's duplicates differ");
        } else {
            assert_eq!(reply.status, 409, "{reply:?}");
            assert_eq!(reply.code(), "idempotency_key_reused");
        }
    }
    let after = effects(&app, &shop).await;
    let amount = winning_body["amount"].as_i64().expect("an amount");
    assert_eq!(
        after,
        Effects {
            ledger: before.ledger + 1,
            balance: before.balance - amount,
            ..before
        }
    );
}
