//! The event feed: one event per committed change, written with it, numbered
//! per business in commit order with no gap, `data` as the API shows the
//! resource, filters, the long-poll, tenant isolation, customer.overdue,
//! retention and the audit.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Business, TestApp, as_tenant};
use crate::support::{assert_invalid, uuid_of};

/// Every event after `after`, paging with `next_after` (long-polling while
/// short) until there are `count`; panics if they do not come within a
/// minute.
async fn feed(app: &TestApp, biz: &Business, after: i64, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut after = after;
    while seen.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} events came: {seen:#?}",
            seen.len()
        );
        let page = app
            .get(
                &format!("/v1/events?after={after}&limit=200&wait=5"),
                &biz.key,
            )
            .await;
        assert_eq!(page.status, 200, "{page:?}");
        seen.extend(page.body["data"].as_array().expect("data").iter().cloned());
        after = page.body["next_after"].as_i64().expect("next_after");
    }
    assert_eq!(seen.len(), count, "more events than expected: {seen:#?}");
    seen
}

/// The newest sequence the feed shows once `count` events exist.
async fn last_sequence(app: &TestApp, biz: &Business, count: usize) -> i64 {
    let events = feed(app, biz, 0, count).await;
    events
        .last()
        .map_or(0, |event| event["sequence"].as_i64().expect("sequence"))
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["type"].as_str().expect("type"))
        .collect()
}

/// The one event of `kind` among `events`.
fn only<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|event| event["type"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} expected: {events:#?}");
    found[0]
}

fn assert_about(event: &Value, subject: Uuid, data: &Value) {
    assert_eq!(uuid_of(&event["subject_id"]), subject, "{event:#}");
    assert_eq!(&event["data"], data, "{} data differs", event["type"]);
    for member in ["id", "sequence", "type", "created_at", "subject_id", "data"] {
        assert!(event.get(member).is_some(), "no {member}: {event:#}");
    }
}

#[tokio::test]
async fn every_event_type_carries_the_resource_as_the_api_returns_it() {
    let app = TestApp::spawn().await;
    let biz = app.business("Events").await;
    let created = app
        .post(
            "/v1/customers",
            &biz.key,
            json!({"name": "Ada", "credit_limit": 100_000}),
        )
        .await;
    let customer = created.id();
    let product = app
        .post(
            "/v1/products",
            &biz.key,
            json!({"name": "Tea", "price": 1250, "stock": 40}),
        )
        .await;
    let product_id = product.id();
    let patched_customer = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &biz.key,
            json!({"name": "Ada L."}),
        )
        .await;
    assert_eq!(patched_customer.status, 200);
    let patched_product = app
        .patch(
            &format!("/v1/products/{product_id}"),
            &biz.key,
            json!({"price": 1300}),
        )
        .await;
    let adjusted = app
        .post(
            &format!("/v1/products/{product_id}/stock-adjustments"),
            &biz.key,
            json!({"delta": -2, "reason": "damaged"}),
        )
        .await;
    let purchase = app.purchase(&biz, customer, &[(product_id, 3)]).await;
    assert_eq!(purchase.status, 201, "{purchase:?}");
    let payment = app
        .post(
            "/v1/payments",
            &biz.key,
            json!({"customer_id": customer, "amount": 500}),
        )
        .await;
    let returned = app
        .post(
            &format!("/v1/orders/{}/returns", purchase.id()),
            &biz.key,
            json!({"items": [{"product_id": product_id, "quantity": 1}]}),
        )
        .await;
    assert_eq!(returned.status, 201, "{returned:?}");
    let write_off = app
        .post(
            &format!("/v1/customers/{customer}/write-offs"),
            &biz.key,
            json!({"amount": 100, "reason": "goodwill"}),
        )
        .await;
    assert_eq!(write_off.status, 201, "{write_off:?}");
    let hold_to_capture = app
        .post(
            "/v1/holds",
            &biz.key,
            json!({"customer_id": customer, "items": [{"product_id": product_id, "quantity": 2}]}),
        )
        .await;
    assert_eq!(hold_to_capture.status, 201, "{hold_to_capture:?}");
    let captured = app
        .post(
            &format!("/v1/holds/{}/capture", hold_to_capture.id()),
            &biz.key,
            json!({}),
        )
        .await;
    assert_eq!(captured.status, 201, "{captured:?}");
    let hold_to_void = app
        .post(
            "/v1/holds",
            &biz.key,
            json!({"customer_id": customer, "items": [{"product_id": product_id, "quantity": 1}]}),
        )
        .await;
    let voided = app
        .post(
            &format!("/v1/holds/{}/void", hold_to_void.id()),
            &biz.key,
            json!({}),
        )
        .await;
    assert_eq!(voided.status, 200, "{voided:?}");
    let hold_to_expire = app
        .post(
            "/v1/holds",
            &biz.key,
            json!({"customer_id": customer, "items": [{"product_id": product_id, "quantity": 1}], "expires_in": 1}),
        )
        .await;
    assert_eq!(hold_to_expire.status, 201);

    // 13 changes, then the sweep records the last hold's expiry.
    let events = feed(&app, &biz, 0, 16).await;
    assert_eq!(
        types(&events),
        [
            "customer.created",
            "product.created",
            "customer.updated",
            "product.updated",
            "stock.adjusted",
            "purchase.created",
            "payment.recorded",
            "return.recorded",
            "write_off.recorded",
            "hold.created",
            "hold.captured",
            "purchase.created",
            "hold.created",
            "hold.voided",
            "hold.created",
            "hold.expired",
        ]
    );
    let sequences: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().expect("n"))
        .collect();
    assert_eq!(sequences, (1..=16).collect::<Vec<i64>>());

    assert_about(&events[0], customer, &created.body);
    assert_about(&events[1], product_id, &product.body);
    assert_about(&events[2], customer, &patched_customer.body);
    assert_about(&events[3], product_id, &patched_product.body);
    assert_about(&events[4], product_id, &adjusted.body);
    assert_about(&events[5], customer, &purchase.body);
    assert_about(&events[6], customer, &payment.body);
    assert_about(&events[7], customer, &returned.body);
    assert_about(&events[8], customer, &write_off.body);
    assert_about(&events[9], customer, &hold_to_capture.body);
    let captured_hold = app
        .get(&format!("/v1/holds/{}", hold_to_capture.id()), &biz.key)
        .await;
    assert_about(&events[10], customer, &captured_hold.body);
    assert_about(&events[11], customer, &captured.body);
    assert_about(&events[12], customer, &hold_to_void.body);
    assert_about(&events[13], customer, &voided.body);
    assert_about(&events[14], customer, &hold_to_expire.body);
    let expired = app
        .get(&format!("/v1/holds/{}", hold_to_expire.id()), &biz.key)
        .await;
    assert_eq!(expired.body["status"], "expired");
    assert_about(&events[15], customer, &expired.body);
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn refused_and_replayed_requests_leave_no_event() {
    let app = TestApp::spawn().await;
    let biz = app.business("Refusals").await;
    let customer = app.customer(&biz, 1000).await;
    let product = app.product(&biz, 600, 1).await;
    // Over the limit, out of stock, more than the balance, below zero stock.
    assert_eq!(
        app.purchase(&biz, customer, &[(product, 2)]).await.status,
        409
    );
    let other = app.product(&biz, 5000, 10).await;
    assert_eq!(
        app.purchase(&biz, customer, &[(other, 1)]).await.status,
        409
    );
    let overpaid = app
        .post(
            "/v1/payments",
            &biz.key,
            json!({"customer_id": customer, "amount": 1}),
        )
        .await;
    assert_eq!(overpaid.status, 409);
    let adjusted = app
        .post(
            &format!("/v1/products/{product}/stock-adjustments"),
            &biz.key,
            json!({"delta": -5, "reason": "lost"}),
        )
        .await;
    assert_eq!(adjusted.status, 409);
    // A valid purchase, sent twice with one key: one purchase, one event.
    let body = json!({"customer_id": customer, "items": [{"product_id": product, "quantity": 1}]});
    for _ in 0..2 {
        let reply = app
            .post_once("/v1/purchases", &biz.key, "once-1", body.clone())
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    // Nothing at all: a PATCH that changes nothing.
    app.patch(
        &format!("/v1/customers/{customer}"),
        &biz.key,
        json!({"credit_limit": 1000}),
    )
    .await;
    // A marker after everything above.
    let marker = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &biz.key,
            json!({"name": "Marker"}),
        )
        .await;
    assert_eq!(marker.status, 200);
    let events = feed(&app, &biz, 0, 5).await;
    assert_eq!(
        types(&events),
        [
            "customer.created",
            "product.created",
            "product.created",
            "purchase.created",
            "customer.updated"
        ]
    );
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn holds_reserving_and_releasing_emit_no_customer_or_product_update() {
    let app = TestApp::spawn().await;
    let biz = app.business("Reservations").await;
    let customer = app.customer(&biz, 10_000).await;
    let product = app.product(&biz, 100, 10).await;
    let hold = app
        .post(
            "/v1/holds",
            &biz.key,
            json!({"customer_id": customer, "items": [{"product_id": product, "quantity": 3}]}),
        )
        .await;
    assert_eq!(hold.status, 201);
    let reserved = app.get(&format!("/v1/products/{product}"), &biz.key).await;
    assert_eq!(reserved.body["reserved"], 3, "the hold reserves");
    let voided = app
        .post(
            &format!("/v1/holds/{}/void", hold.id()),
            &biz.key,
            json!({}),
        )
        .await;
    assert_eq!(voided.status, 200);
    app.patch(
        &format!("/v1/products/{product}"),
        &biz.key,
        json!({"name": "Marker"}),
    )
    .await;
    let events = feed(&app, &biz, 0, 5).await;
    assert_eq!(
        types(&events),
        [
            "customer.created",
            "product.created",
            "hold.created",
            "hold.voided",
            "product.updated"
        ]
    );
}

#[tokio::test]
async fn concurrent_writers_and_a_paging_reader_see_every_event_once_in_order() {
    let app = TestApp::spawn().await;
    let biz = app.business("Busy").await;
    let product = app.product(&biz, 10, 100_000).await;
    let mut customers = Vec::new();
    for _ in 0..8 {
        customers.push(app.customer(&biz, 1_000_000).await);
    }
    let start = last_sequence(&app, &biz, 9).await;

    // A reader pages with small pages from the start, concurrently.
    let reader = {
        let (base, key) = (app.base_url.clone(), biz.key.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut seen: Vec<Value> = Vec::new();
            let mut after = start;
            let expected = 8 * 25 + 8 * 5;
            let deadline = Instant::now() + Duration::from_secs(120);
            while seen.len() < expected && Instant::now() < deadline {
                let page: Value = http
                    .get(format!("{base}/v1/events?after={after}&limit=7&wait=2"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .expect("feed answers")
                    .json()
                    .await
                    .expect("feed is JSON");
                seen.extend(page["data"].as_array().expect("data").iter().cloned());
                after = page["next_after"].as_i64().expect("next_after");
            }
            seen
        })
    };
    // Eight writers: 25 purchases each (group-committed under load) and 5
    // payments, all at once.
    let mut writers = Vec::new();
    for customer in customers.clone() {
        let (base, key) = (app.base_url.clone(), biz.key.clone());
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut orders = Vec::new();
            for round in 0..30 {
                let (path, body) = if round % 6 == 5 {
                    ("payments", json!({"customer_id": customer, "amount": 10}))
                } else {
                    (
                        "purchases",
                        json!({"customer_id": customer, "items": [{"product_id": product, "quantity": 1}]}),
                    )
                };
                let reply = http
                    .post(format!("{base}/v1/{path}"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .expect("answers");
                assert_eq!(reply.status(), 201);
                let body: Value = reply.json().await.expect("JSON");
                if path == "purchases" {
                    orders.push(uuid_of(&body["id"]));
                }
            }
            orders
        }));
    }
    let mut orders = HashSet::new();
    for writer in writers {
        orders.extend(writer.await.expect("writer"));
    }
    let seen = reader.await.expect("reader");
    assert_eq!(seen.len(), 240, "the reader saw every event");
    let sequences: Vec<i64> = seen
        .iter()
        .map(|e| e["sequence"].as_i64().expect("n"))
        .collect();
    assert_eq!(
        sequences,
        ((start + 1)..=(start + 240)).collect::<Vec<i64>>()
    );
    let ids: HashSet<&str> = seen.iter().map(|e| e["id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), 240, "each event once");
    let purchased: HashSet<Uuid> = seen
        .iter()
        .filter(|e| e["type"] == "purchase.created")
        .map(|e| uuid_of(&e["data"]["id"]))
        .collect();
    assert_eq!(purchased, orders, "one purchase.created per order");
    // Per customer, the ledger's order: balance_after of payments rises
    // and falls as the chain did, so each customer's entries appear in seq
    // order.
    for customer in customers {
        let mine: Vec<i64> = seen
            .iter()
            .filter(|e| e["subject_id"] == customer.to_string() && e["type"] == "payment.recorded")
            .map(|e| e["data"]["seq"].as_i64().expect("seq"))
            .collect();
        let mut sorted = mine.clone();
        sorted.sort_unstable();
        assert_eq!(mine, sorted, "a customer's entries in chain order");
    }
    app.assert_audit_clean().await;
}

/// The commit-order trap: an event written first but committed last is
/// numbered after the one that committed first, so a reader that has
/// passed the first never misses it.
#[tokio::test]
async fn an_event_committed_late_is_numbered_after_those_committed_before_it() {
    let app = TestApp::spawn().await;
    let biz = app.business("Late").await;
    let slow = app.customer(&biz, 0).await;
    let fast = app.customer(&biz, 0).await;
    let before = last_sequence(&app, &biz, 2).await;

    // A change written now (its event too), committed later: a write as
    // the server does it, in a transaction of ontab_app for this tenant.
    let mut sql = app.sql().await;
    let late = sql.transaction().await.expect("begin");
    as_tenant(&late, biz.id).await;
    late.batch_execute(&format!(
        "UPDATE customers SET name = 'Slow' WHERE id = '{slow}'"
    ))
    .await
    .expect("the late change is written");

    let fast_change = app
        .patch(
            &format!("/v1/customers/{fast}"),
            &biz.key,
            json!({"name": "Fast"}),
        )
        .await;
    assert_eq!(fast_change.status, 200);
    let first = feed(&app, &biz, before, 1).await;
    assert_eq!(uuid_of(&first[0]["subject_id"]), fast);
    let read_to = first[0]["sequence"].as_i64().expect("sequence");

    late.commit().await.expect("the late change commits");
    let next = feed(&app, &biz, read_to, 1).await;
    assert_eq!(uuid_of(&next[0]["subject_id"]), slow);
    assert_eq!(next[0]["sequence"], read_to + 1);
}

/// A shard move on Citus, played on one PostgreSQL: there each node draws
/// positions from its own range of event_positions (group g from g << 48),
/// so after a move to a node of a lower group, new events get lower
/// positions than those written before the move. Here setval moves the
/// counter from "group 2" down to "group 1" while the sequencer is held
/// off (its counter row locked), so one numbering round sees an event
/// from before the move and one from after it: they must be numbered in
/// commit order, not position order.
#[tokio::test]
async fn events_written_before_a_shard_move_are_numbered_before_those_after_it() {
    if crate::helpers::skipped_on_citus("plays a move by setval on one node's sequence") {
        return;
    }
    let app = TestApp::spawn().await;
    let biz = app.business("Moved").await;
    let before_move = app.customer(&biz, 0).await;
    let after_move = app.customer(&biz, 0).await;
    let created = last_sequence(&app, &biz, 2).await;
    let rename = |customer: Uuid, name: &'static str| {
        let app = &app;
        let biz = &biz;
        async move {
            let renamed = app
                .patch(
                    &format!("/v1/customers/{customer}"),
                    &biz.key,
                    json!({ "name": name }),
                )
                .await;
            assert_eq!(renamed.status, 200, "{renamed:?}");
        }
    };
    let mut sql = app.sql().await;
    let group = |g: i64| format!("SELECT setval('event_positions', ({g}::bigint << 48) + 100)");

    // The business lives on "group 2", and its last event was numbered
    // there.
    sql.batch_execute(&group(2)).await.expect("setval");
    rename(before_move, "Warm").await;
    let warm = feed(&app, &biz, created, 1).await;
    let read_to = warm[0]["sequence"].as_i64().expect("sequence");

    let held = sql.transaction().await.expect("begin");
    held.execute(
        "SELECT 1 FROM event_sequences WHERE business_id = $1 FOR UPDATE",
        &[&biz.id],
    )
    .await
    .expect("the sequencer is held off");
    rename(before_move, "Before the move").await;
    held.batch_execute(&group(1))
        .await
        .expect("the move: lower positions from now on");
    rename(after_move, "After the move").await;
    let positions: Vec<i64> = held
        .query(
            "SELECT position FROM events WHERE business_id = $1 AND sequence IS NULL
              ORDER BY position",
            &[&biz.id],
        )
        .await
        .expect("unnumbered events")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(positions.len(), 2, "both wait for one numbering round");
    assert!(
        positions[0] >> 48 == 1 && positions[1] >> 48 == 2,
        "the later event has the lower position: {positions:?}"
    );
    held.rollback().await.expect("the sequencer may go on");

    let numbered = feed(&app, &biz, read_to, 2).await;
    let order: Vec<(Uuid, &str)> = numbered
        .iter()
        .map(|event| {
            (
                uuid_of(&event["subject_id"]),
                event["data"]["name"].as_str().expect("name"),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (before_move, "Before the move"),
            (after_move, "After the move")
        ],
        "commit order across the move"
    );
}

#[tokio::test]
async fn types_filter_returns_only_those_types_and_moves_past_the_rest() {
    let app = TestApp::spawn().await;
    let biz = app.business("Filtered").await;
    let customer = app.customer(&biz, 10_000).await;
    let product = app.product(&biz, 10, 100).await;
    for _ in 0..3 {
        assert_eq!(
            app.purchase(&biz, customer, &[(product, 1)]).await.status,
            201
        );
    }
    let paid = app
        .post(
            "/v1/payments",
            &biz.key,
            json!({"customer_id": customer, "amount": 10}),
        )
        .await;
    assert_eq!(paid.status, 201);
    let total = last_sequence(&app, &biz, 6).await;

    let page = app
        .get(
            "/v1/events?types=payment.recorded,product.created",
            &biz.key,
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        types(page.body["data"].as_array().expect("data")),
        ["product.created", "payment.recorded"]
    );
    assert_eq!(page.body["next_after"], total, "past everything looked at");
    let two = app
        .get("/v1/events?types=purchase.created&limit=2", &biz.key)
        .await;
    let data = two.body["data"].as_array().expect("data");
    assert_eq!(types(data), ["purchase.created", "purchase.created"]);
    assert_eq!(
        two.body["next_after"], data[1]["sequence"],
        "stops at the last returned"
    );
    let nothing = app.get("/v1/events?types=hold.expired", &biz.key).await;
    assert_eq!(nothing.body["data"], json!([]));
    assert_eq!(nothing.body["next_after"], total);
}

#[tokio::test]
async fn wait_answers_as_soon_as_a_newer_event_is_sequenced() {
    let app = TestApp::spawn().await;
    let biz = app.business("Waiting").await;
    let customer = app.customer(&biz, 0).await;
    let now = last_sequence(&app, &biz, 1).await;

    let empty = app.get(&format!("/v1/events?after={now}"), &biz.key).await;
    assert_eq!(empty.body["data"], json!([]), "no wait: answered at once");
    assert_eq!(empty.body["next_after"], now);

    let waiting = {
        let (base, key) = (app.base_url.clone(), biz.key.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(format!("{base}/v1/events?after={now}&wait=30"))
                .bearer_auth(key)
                .send()
                .await
                .expect("answers")
                .json::<Value>()
                .await
                .expect("JSON")
        })
    };
    // The reader's request is in: its first read found nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.patch(
        &format!("/v1/customers/{customer}"),
        &biz.key,
        json!({"name": "Woken"}),
    )
    .await;
    let page = waiting.await.expect("the waiting reader");
    assert_eq!(
        types(page["data"].as_array().expect("data")),
        ["customer.updated"]
    );
    assert_eq!(page["next_after"], now + 1);
}

#[tokio::test]
async fn feed_parameters_are_validated() {
    let app = TestApp::spawn().await;
    let biz = app.business("Params").await;
    let bad = app
        .get(
            "/v1/events?after=-1&limit=0&types=order.shipped&wait=31",
            &biz.key,
        )
        .await;
    assert_invalid(&bad, &["after", "limit", "types", "wait"]);
    for query in [
        "after=x",
        "limit=201",
        "wait=-1",
        "types=",
        "types=purchase.created,",
    ] {
        let reply = app.get(&format!("/v1/events?{query}"), &biz.key).await;
        assert_eq!(reply.status, 422, "{query}: {reply:?}");
        assert_eq!(reply.code(), "validation_failed");
    }
    let unreadable = app.get("/v1/events?after=%ZZ", &biz.key).await;
    assert!([400, 422].contains(&unreadable.status), "{unreadable:?}");
    let anonymous = app.get("/v1/events", "not-a-key").await;
    assert_eq!(anonymous.status, 401);
    let ok = app
        .get(
            "/v1/events?after=9007199254740991&limit=200&wait=0",
            &biz.key,
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["data"], json!([]));
    assert_eq!(ok.body["oldest_sequence"], 1);
}

#[tokio::test]
async fn another_tenant_never_sees_events_through_the_api_or_sql() {
    let app = TestApp::spawn().await;
    let mine = app.business("Mine").await;
    let theirs = app.business("Theirs").await;
    app.customer(&mine, 0).await;
    app.customer(&theirs, 0).await;
    app.customer(&theirs, 0).await;
    let my_events = feed(&app, &mine, 0, 1).await;
    let their_events = feed(&app, &theirs, 0, 2).await;
    assert_eq!(my_events[0]["sequence"], 1, "each business numbers from 1");
    assert_eq!(their_events[1]["sequence"], 2);
    let mine_again = app.get("/v1/events?after=0&limit=200", &mine.key).await;
    assert_eq!(mine_again.body["data"].as_array().expect("data").len(), 1);

    // As the server's role: the tenant's rows only; none without a tenant.
    let mut sql = app.sql().await;
    let tx = sql.transaction().await.expect("begin");
    as_tenant(&tx, mine.id).await;
    let visible: Vec<Uuid> = tx
        .query("SELECT DISTINCT business_id FROM events", &[])
        .await
        .expect("events readable")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(visible, [mine.id]);
    // SET LOCAL, which a distributed PostgreSQL forwards to its nodes.
    tx.batch_execute("SET LOCAL ontab.business_id = ''")
        .await
        .expect("no tenant");
    let none: i64 = tx
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(none, 0);
    // Nor may it write or number events.
    tx.batch_execute(&format!("SET LOCAL ontab.business_id = '{}'", mine.id))
        .await
        .expect("the tenant again");
    let forged = tx
        .execute(
            "INSERT INTO events (business_id, id, type, subject_id, data)
             VALUES ($1, gen_random_uuid(), 'customer.created', gen_random_uuid(), '{}')",
            &[&mine.id],
        )
        .await;
    assert!(forged.is_err(), "ontab_app cannot forge an event");
}

#[tokio::test]
async fn overdue_is_reported_once_per_unsettled_purchase_past_due() {
    // The scan runs only when the test says (as when another instance
    // scans), so what is settled by then is decided first.
    let app = TestApp::spawn_with_overdue_scan(Duration::ZERO).await;
    let biz = app.business("Dunning").await;
    let due_now = app
        .post(
            "/v1/customers",
            &biz.key,
            json!({"name": "Due", "credit_limit": 10_000, "payment_terms_days": 0}),
        )
        .await
        .id();
    let later = app
        .post(
            "/v1/customers",
            &biz.key,
            json!({"name": "Later", "credit_limit": 10_000, "payment_terms_days": 30}),
        )
        .await
        .id();
    let product = app.product(&biz, 10, 100).await;
    let settled = app.purchase(&biz, due_now, &[(product, 10)]).await;
    let unsettled = app.purchase(&biz, due_now, &[(product, 5)]).await;
    assert_eq!(app.purchase(&biz, later, &[(product, 1)]).await.status, 201);
    let paid = app
        .post(
            "/v1/payments",
            &biz.key,
            json!({"customer_id": due_now, "amount": 120}),
        )
        .await;
    assert_eq!(paid.status, 201);
    let before = last_sequence(&app, &biz, 7).await;

    let scan = || async {
        let mut sql = app.sql().await;
        let tx = sql.transaction().await.expect("begin");
        as_tenant(&tx, biz.id).await;
        let emitted: i64 = tx
            .query_one("SELECT ontab_record_overdue_for(1000, $1)", &[&biz.id])
            .await
            .expect("the scan runs")
            .get(0);
        tx.commit().await.expect("commit");
        emitted
    };
    assert_eq!(scan().await, 1, "only the unsettled purchase is overdue");
    assert_eq!(scan().await, 0, "and only once");

    let events = feed(&app, &biz, before, 1).await;
    let overdue = only(&events, "customer.overdue");
    assert_eq!(uuid_of(&overdue["subject_id"]), due_now);
    let overdue_data = &overdue["data"]["overdue"];
    assert_eq!(uuid_of(&overdue_data["order_id"]), unsettled.id());
    assert_ne!(uuid_of(&overdue_data["order_id"]), settled.id());
    assert_eq!(
        overdue_data["unsettled_amount"], 30,
        "50 bought, 20 of it paid (FIFO)"
    );
    assert_eq!(overdue_data["due_at"], unsettled.body["due_at"]);
    let mut customer = overdue["data"].clone();
    customer.as_object_mut().expect("object").remove("overdue");
    let shown = app.get(&format!("/v1/customers/{due_now}"), &biz.key).await;
    assert_eq!(
        customer, shown.body,
        "data is the customer as the API shows it"
    );
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn the_background_scan_reports_a_purchase_that_falls_due() {
    let app = TestApp::spawn_with_overdue_scan(Duration::from_millis(100)).await;
    let other_scanner = app.another_instance().await;
    let biz = app.business("Background").await;
    let customer = app
        .post(
            "/v1/customers",
            &biz.key,
            json!({"name": "Due", "credit_limit": 10_000, "payment_terms_days": 0}),
        )
        .await
        .id();
    let product = app.product(&biz, 10, 100).await;
    let order = app.purchase(&biz, customer, &[(product, 3)]).await;
    assert_eq!(order.status, 201);
    let events = feed(&app, &biz, 0, 4).await;
    let overdue = only(&events, "customer.overdue");
    assert_eq!(uuid_of(&overdue["data"]["overdue"]["order_id"]), order.id());
    // Both instances scan every 100 ms; a marker written after several of
    // their scans is the next event, not a second report.
    tokio::time::sleep(Duration::from_millis(500)).await;
    other_scanner
        .patch(
            &format!("/v1/customers/{customer}"),
            &biz.key,
            json!({"name": "Marker"}),
        )
        .await;
    let after = events.last().expect("events")["sequence"]
        .as_i64()
        .expect("n");
    let next = feed(&app, &biz, after, 1).await;
    assert_eq!(types(&next), ["customer.updated"]);
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn retention_prunes_the_oldest_and_the_feed_says_where_it_starts() {
    let app = TestApp::spawn().await;
    let biz = app.business("Retention").await;
    for _ in 0..5 {
        app.customer(&biz, 0).await;
    }
    last_sequence(&app, &biz, 5).await;
    let mut sql = app.sql().await;
    let tx = sql.transaction().await.expect("begin");
    as_tenant(&tx, biz.id).await;
    // Everything is older than tomorrow; at most 3 go in this call.
    let pruned: i64 = tx
        .query_one(
            "SELECT ontab_prune_events_for(now() + interval '1 day', 3, $1)",
            &[&biz.id],
        )
        .await
        .expect("prunes")
        .get(0);
    assert_eq!(pruned, 3);
    // Nothing is older than yesterday.
    let kept: i64 = tx
        .query_one(
            "SELECT ontab_prune_events_for(now() - interval '1 day', 100, $1)",
            &[&biz.id],
        )
        .await
        .expect("prunes")
        .get(0);
    assert_eq!(kept, 0);
    tx.commit().await.expect("commit");
    let page = app.get("/v1/events?after=0", &biz.key).await;
    assert_eq!(page.body["oldest_sequence"], 4);
    let sequences: Vec<i64> = page.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["sequence"].as_i64().expect("n"))
        .collect();
    assert_eq!(sequences, [4, 5]);
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn the_audit_finds_a_change_without_its_event() {
    let app = TestApp::spawn().await;
    let biz = app.business("Audited").await;
    let customer = app.customer(&biz, 1000).await;
    let product = app.product(&biz, 10, 10).await;
    assert_eq!(
        app.purchase(&biz, customer, &[(product, 1)]).await.status,
        201
    );
    let events = feed(&app, &biz, 0, 3).await;
    app.assert_audit_clean().await;

    let sql = app.sql().await;
    sql.execute(
        "DELETE FROM events WHERE business_id = $1 AND type = 'purchase.created'",
        &[&biz.id],
    )
    .await
    .expect("an event lost");
    let mut client = app.sql().await;
    let report = ontab::app::audit::audit(&mut client, None)
        .await
        .expect("audit runs");
    let failed: HashSet<&str> = report.violations.iter().map(|v| v.check).collect();
    assert_eq!(
        failed,
        HashSet::from(["events_complete", "events_gapless"]),
        "{report:#?}"
    );
    let missing = report
        .violations
        .iter()
        .find(|v| v.check == "events_complete")
        .expect("found");
    assert_eq!(missing.subject, "events purchase.created");
    assert_eq!(events.len(), 3);
}
