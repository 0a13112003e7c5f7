//! Webhooks end to end: real receivers on 127.0.0.1 in this process, the
//! real delivery engine, real PostgreSQL. Signatures are checked with the
//! receiver's own HMAC (`receiver::verify`), not ontab's signing code.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Business, TestApp, WebhookLaunch, as_tenant};
use crate::receiver::{CountingReceiver, Received, Receiver, verify};
use crate::support::assert_invalid;

/// Creates an endpoint for `url`; answers (id, secret).
async fn endpoint(app: &TestApp, biz: &Business, body: Value) -> (String, String) {
    let reply = app.post("/v1/webhook-endpoints", &biz.key, body).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["id"].as_str().expect("id").to_owned();
    let secret = reply.body["secret"].as_str().expect("secret").to_owned();
    (id, secret)
}

async fn rename(app: &TestApp, biz: &Business, customer: Uuid, name: &str) {
    let reply = app
        .patch(
            &format!("/v1/customers/{customer}"),
            &biz.key,
            json!({ "name": name }),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// The attempts log, newest first, every page.
async fn attempts(app: &TestApp, biz: &Business, endpoint: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get(
                &format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=2{cursor}"),
                &biz.key,
            )
            .await;
        assert_eq!(page.status, 200, "{page:?}");
        all.extend(page.body["data"].as_array().expect("data").iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return all,
        }
    }
}

/// Waits until the attempts log satisfies `done`.
async fn wait_attempts(
    app: &TestApp,
    biz: &Business,
    endpoint: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..600 {
        let log = attempts(app, biz, endpoint).await;
        if done(&log) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the attempts log never got there: {:#?}",
        attempts(app, biz, endpoint).await
    );
}

fn fast_retries(schedule_ms: &[u64]) -> WebhookLaunch {
    WebhookLaunch {
        retry_schedule: Some(
            schedule_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
        ),
        ..WebhookLaunch::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_signed_with_standard_webhooks_headers() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let biz = app.business("Hooked").await;
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    assert!(secret.starts_with("whsec_"));
    let customer = app.customer(&biz, 1000).await;

    let got = receiver
        .wait_for("customer.created", |got| !got.is_empty())
        .await;
    let first = &got[0];
    assert!(
        verify(&secret, first),
        "signature does not verify: {first:?}"
    );
    assert_eq!(first.json["id"].as_str(), Some(first.id.as_str()));
    assert_eq!(first.event_type(), "customer.created");
    assert_eq!(first.subject(), customer.to_string());
    assert_eq!(first.json["data"]["id"], json!(customer.to_string()));
    let keys: Vec<&String> = first.json.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        ["id", "sequence", "type", "created_at", "subject_id", "data"]
    );
    let timestamp: i64 = first.timestamp.parse().expect("unix seconds");
    assert!((timestamp - chrono::Utc::now().timestamp()).abs() < 300);
    // The same event in the feed, byte for byte the same values.
    let feed = app.get("/v1/events?after=0", &biz.key).await;
    assert_eq!(feed.body["data"][0], first.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_is_retried_on_the_schedule_then_given_up() {
    let app = TestApp::spawn_with_webhooks(fast_retries(&[50, 50])).await;
    let biz = app.business("Failing").await;
    let receiver = Receiver::answering(Arc::new(|_| (500, false))).await;
    let (id, _) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    app.customer(&biz, 0).await;

    let log = wait_attempts(&app, &biz, &id, |log| {
        log.first().is_some_and(|a| a["outcome"] == "gave_up")
    })
    .await;
    let outcomes: Vec<&str> = log
        .iter()
        .rev()
        .map(|a| a["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(outcomes, ["retrying", "retrying", "gave_up"]);
    let numbers: Vec<i64> = log
        .iter()
        .rev()
        .map(|a| a["attempt"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    for attempt in &log {
        assert_eq!(attempt["status_code"], 500);
        assert_eq!(attempt["event_id"], log[0]["event_id"]);
        assert!(attempt["duration_ms"].as_i64().is_some());
    }
    assert!(log[2]["next_attempt_at"].is_string(), "a retry says when");
    assert!(
        log[0]["next_attempt_at"].is_null(),
        "nothing follows giving up"
    );
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(
        received.iter().all(|r| r.id == received[0].id),
        "retries keep the webhook-id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_that_succeeds_is_delivered_and_a_gone_endpoint_is_disabled() {
    let app = TestApp::spawn_with_webhooks(fast_retries(&[50, 50, 50])).await;
    let biz = app.business("Flaky").await;
    let flaky = Receiver::answering(Arc::new(|r: &Received| {
        (if r.seen_before == 0 { 503 } else { 200 }, false)
    }))
    .await;
    let (flaky_id, _) = endpoint(&app, &biz, json!({ "url": flaky.url })).await;
    let gone = Receiver::answering(Arc::new(|_| (410, false))).await;
    let (gone_id, _) = endpoint(&app, &biz, json!({ "url": gone.url })).await;
    app.customer(&biz, 0).await;

    let log = wait_attempts(&app, &biz, &flaky_id, |log| {
        log.first().is_some_and(|a| a["outcome"] == "delivered")
    })
    .await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[1]["status_code"], 503);
    assert_eq!(log[0]["status_code"], 200);

    let log = wait_attempts(&app, &biz, &gone_id, |log| !log.is_empty()).await;
    assert_eq!(log[0]["outcome"], "disabled");
    let endpoint = app
        .get(&format!("/v1/webhook-endpoints/{gone_id}"), &biz.key)
        .await;
    assert_eq!(endpoint.body["disabled"], true);
    assert_eq!(endpoint.body["disabled_reason"], "gone");
    // Disabled, it gets nothing more.
    app.customer(&biz, 0).await;
    flaky
        .wait_for("the second customer", |got| got.len() == 3)
        .await;
    assert_eq!(gone.received().len(), 1);
}

/// A recording of attempts that fails (here once, refused by a trigger on
/// its first attempt row) is written again a moment later: the event is
/// logged as delivered, and is not sent again when the lease it was sent
/// under runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_that_fails_once_is_written_again_and_nothing_is_sent_twice() {
    if crate::helpers::skipped_on_citus("the failure is a trigger on the one node it connects to") {
        return;
    }
    // A lease of 4 s: without the second write the event would go again
    // within the test's wait, and a slow machine has time to write it.
    let app = TestApp::spawn_with_webhooks(WebhookLaunch {
        timeout: Duration::from_secs(1),
        lease_margin: Duration::from_secs(3),
        ..WebhookLaunch::default()
    })
    .await;
    let sql = app.sql().await;
    sql.batch_execute(
        "CREATE SEQUENCE test_recordings;
         GRANT USAGE ON SEQUENCE test_recordings TO PUBLIC;
         CREATE FUNCTION test_fail_first_recording() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             -- A sequence, not a flag: its step survives the rollback.
             IF nextval('public.test_recordings') = 1 THEN
                 RAISE EXCEPTION 'the first recording fails (test)';
             END IF;
             RETURN NEW;
         END $$;
         GRANT EXECUTE ON FUNCTION test_fail_first_recording() TO PUBLIC;
         CREATE TRIGGER test_fail_first_recording BEFORE INSERT ON webhook_attempts
            FOR EACH ROW EXECUTE FUNCTION test_fail_first_recording();",
    )
    .await
    .expect("install the failing trigger");
    let biz = app.business("Recorded").await;
    let receiver = Receiver::start().await;
    let (endpoint_id, _) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    app.customer(&biz, 0).await;

    let log = wait_attempts(&app, &biz, &endpoint_id, |log| !log.is_empty()).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["outcome"], "delivered");
    let tries: i64 = sql
        .query_one("SELECT last_value FROM public.test_recordings", &[])
        .await
        .expect("the trigger's count")
        .get(0);
    assert_eq!(tries, 2, "the first recording failed, the second held");
    // Past the lease and a poll: nothing goes again.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    assert_eq!(receiver.received().len(), 1, "sent again");
    assert_eq!(attempts(&app, &biz, &endpoint_id).await.len(), 1);
    sql.batch_execute("DROP TRIGGER test_fail_first_recording ON webhook_attempts")
        .await
        .expect("drop the trigger");
    app.assert_audit_clean().await;
}

/// The session's `synchronous_commit`, inside a transaction or not.
async fn synchronous_commit(sql: &impl tokio_postgres::GenericClient) -> String {
    sql.query_one("SHOW synchronous_commit", &[])
        .await
        .expect("show")
        .get(0)
}

/// The claim commits without waiting for its WAL to be flushed, as the
/// rest of the delivery bookkeeping does (`deliveries::bookkeeping`): the
/// statement the server runs turns synchronous_commit off for its own
/// transaction, also when it claims nothing, and for no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_commits_without_waiting_for_its_wal_and_only_it() {
    let app = TestApp::spawn().await;
    let claim = ontab::db::sql::statements()
        .into_iter()
        .find(|s| s.module == "ontab::db::deliveries" && s.name == "CLAIM")
        .expect("the claim statement");
    let mut sql = app.sql().await;
    let before = synchronous_commit(&sql).await;
    let tx = sql.transaction().await.expect("begin");
    let (lease, lease_ms, limit) = (Uuid::new_v4(), 60_000_i32, 10_i32);
    let claimed = tx
        .query(claim.sql, &[&lease, &lease_ms, &limit])
        .await
        .expect("claim");
    assert!(claimed.is_empty(), "nothing to claim");
    let during = synchronous_commit(&tx).await;
    assert_eq!(during, "off");
    tx.rollback().await.expect("rollback");
    let after = synchronous_commit(&sql).await;
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_waits_for_its_previous_event_while_others_go_ahead() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let biz = app.business("Ordered").await;
    let slow = app.customer(&biz, 0).await;
    let fast = app.customer(&biz, 0).await;
    let slow_id = slow.to_string();
    let receiver =
        Receiver::answering(Arc::new(move |r: &Received| (200, r.subject() == slow_id))).await;
    endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    for round in 0..5 {
        rename(&app, &biz, slow, &format!("slow {round}")).await;
        rename(&app, &biz, fast, &format!("fast {round}")).await;
    }
    let slow_id = slow.to_string();
    let fast_id = fast.to_string();
    // The held subject's first event is under way; all five updates of the
    // other subject arrive meanwhile, and nothing more of the held one.
    // (Their customer.created may or may not precede the endpoint.)
    let updates = |got: &[Received], subject: &str| {
        got.iter()
            .filter(|r| r.subject() == subject && r.event_type() == "customer.updated")
            .count()
    };
    let got = receiver
        .wait_for("the fast subject's five", |got| updates(got, &fast_id) == 5)
        .await;
    assert_eq!(got.iter().filter(|r| r.subject() == slow_id).count(), 1);
    receiver.open_gate();
    let got = receiver
        .wait_for("all ten updates", |got| {
            updates(got, &slow_id) == 5 && updates(got, &fast_id) == 5
        })
        .await;
    for subject in [&slow_id, &fast_id] {
        let sequences: Vec<i64> = got
            .iter()
            .filter(|r| r.subject() == *subject)
            .map(Received::sequence)
            .collect();
        assert!(
            sequences.windows(2).all(|pair| pair[0] < pair[1]),
            "subject {subject} out of order: {sequences:?}"
        );
    }
}

/// A receiver that answers with a body (most do) gets a subject's events
/// one after another over one connection: each response is read to its end,
/// so the connection goes back to the pool. Dropped unread, a body larger
/// than what had already arrived with the headers closed the connection
/// (3 to 6 connections for these six deliveries of a 20 kB answer), and
/// every such delivery paid a new connection: a TLS handshake for https.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_answers_with_a_body_keeps_one_connection() {
    let receiver = six_deliveries_answered_with(32 * 1024).await;
    assert_eq!(
        receiver.connections(),
        1,
        "six deliveries, one after another, each opened a connection of its own"
    );
}

/// Beyond what is read of an answer (64 KiB), the body is left unread and
/// its connection closed: each delivery still counts as delivered. (2 MiB:
/// more than the HTTP client ever buffers, which with a smaller answer may
/// already hold the rest and keep the connection.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_what_is_read_is_delivered_on_a_new_connection() {
    let receiver = six_deliveries_answered_with(2 * 1024 * 1024).await;
    assert_eq!(receiver.connections(), 6);
}

/// Six events of one subject, one after another, to a receiver answering
/// `200` with `body_len` bytes; every attempt is logged delivered.
async fn six_deliveries_answered_with(body_len: usize) -> CountingReceiver {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let biz = app.business("Kept alive").await;
    let receiver = CountingReceiver::start(body_len).await;
    let (endpoint_id, _) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    let customer = app.customer(&biz, 0).await;
    receiver.wait_for_requests(1).await;
    for round in 0..5 {
        rename(&app, &biz, customer, &format!("renamed {round}")).await;
        receiver.wait_for_requests(2 + round).await;
    }
    let log = wait_attempts(&app, &biz, &endpoint_id, |log| log.len() == 6).await;
    assert!(
        log.iter()
            .all(|a| a["status_code"] == json!(200) && a["outcome"] == json!("delivered")),
        "{log:#?}"
    );
    assert_eq!(receiver.requests(), 6);
    receiver
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_signs_with_both_secrets_during_the_overlap() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let biz = app.business("Rotating").await;
    let receiver = Receiver::start().await;
    let (id, old) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    let rotated = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &biz.key,
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let new = rotated.body["secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    assert_ne!(new, old);
    // Neither secret is ever shown again.
    let shown = app
        .get(&format!("/v1/webhook-endpoints/{id}"), &biz.key)
        .await;
    assert!(shown.body.get("secret").is_none());

    app.customer(&biz, 0).await;
    let got = receiver.wait_for("one event", |got| !got.is_empty()).await;
    assert_eq!(got[0].signature.split(' ').count(), 2);
    assert!(verify(&old, &got[0]), "the old secret still verifies");
    assert!(verify(&new, &got[0]), "the new secret verifies");
    assert!(!verify("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &got[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_filters_and_replay_send_what_was_asked() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let biz = app.business("Filtered").await;
    let products_only = Receiver::start().await;
    let (id, _) = endpoint(
        &app,
        &biz,
        json!({ "url": products_only.url, "types": ["product.created"], "description": "stock" }),
    )
    .await;
    app.customer(&biz, 0).await;
    app.product(&biz, 100, 1).await;
    app.customer(&biz, 0).await;
    app.product(&biz, 100, 1).await;
    let got = products_only
        .wait_for("two products", |got| got.len() == 2)
        .await;
    assert!(got.iter().all(|r| r.event_type() == "product.created"));

    // Replay from the start: both again, same ids.
    let replay = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/replay"),
            &biz.key,
            json!({ "after": 0 }),
        )
        .await;
    assert_eq!(replay.status, 202, "{replay:?}");
    assert_eq!(replay.body["replayed"], 2);
    let again = products_only
        .wait_for("the replay", |got| got.len() == 4)
        .await;
    // Two subjects: replayed in parallel, in either order.
    let mut replayed = [again[2].id.clone(), again[3].id.clone()];
    let mut first_time = [got[0].id.clone(), got[1].id.clone()];
    replayed.sort();
    first_time.sort();
    assert_eq!(replayed, first_time);
    // Replay after the first product's sequence: only the second.
    let (earlier, later) = if got[0].sequence() < got[1].sequence() {
        (&got[0], &got[1])
    } else {
        (&got[1], &got[0])
    };
    let after = earlier.sequence();
    let replay = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/replay"),
            &biz.key,
            json!({ "after": after }),
        )
        .await;
    assert_eq!(replay.body["replayed"], 1);
    let again = products_only
        .wait_for("the second replay", |got| got.len() == 5)
        .await;
    assert_eq!(again[4].id, later.id);

    // Widening the filter to every type.
    let patched = app
        .patch(
            &format!("/v1/webhook-endpoints/{id}"),
            &biz.key,
            json!({ "types": null }),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["types"], Value::Null);
    app.customer(&biz, 0).await;
    let got = products_only
        .wait_for("a customer", |got| got.len() == 6)
        .await;
    assert_eq!(got[5].event_type(), "customer.created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_listed_changed_disabled_and_deleted() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let biz = app.business("Managed").await;
    let receiver = Receiver::start().await;
    let (first, _) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    let (second, _) = endpoint(&app, &biz, json!({ "url": "http://127.0.0.1:9/other" })).await;
    let list = app.get("/v1/webhook-endpoints?limit=1", &biz.key).await;
    assert_eq!(list.body["data"][0]["id"], json!(first));
    let next = list.body["next_cursor"].as_str().expect("a second page");
    let list = app
        .get(
            &format!("/v1/webhook-endpoints?limit=1&cursor={next}"),
            &biz.key,
        )
        .await;
    assert_eq!(list.body["data"][0]["id"], json!(second));
    assert!(list.body["data"][0].get("secret").is_none());

    let disabled = app
        .patch(
            &format!("/v1/webhook-endpoints/{first}"),
            &biz.key,
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(disabled.body["disabled"], true);
    assert_eq!(disabled.body["disabled_reason"], "requested");
    let deleted = app
        .delete(&format!("/v1/webhook-endpoints/{second}"), &biz.key)
        .await;
    assert_eq!(deleted.status, 204);
    let gone = app
        .get(&format!("/v1/webhook-endpoints/{second}"), &biz.key)
        .await;
    assert_eq!(gone.status, 404);
    let enabled = app
        .patch(
            &format!("/v1/webhook-endpoints/{first}"),
            &biz.key,
            json!({ "disabled": false }),
        )
        .await;
    assert_eq!(enabled.body["disabled_reason"], Value::Null);
    app.product(&biz, 1, 1).await;
    receiver
        .wait_for("the product", |got| {
            got.iter().any(|r| r.event_type() == "product.created")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_before_any_connection() {
    // The guard as shipped: no --webhook-allow-private. Only IP literals
    // and `localhost`, judged without a packet sent.
    let app = TestApp::spawn_with_webhooks(WebhookLaunch {
        allow_private: false,
        ..WebhookLaunch::default()
    })
    .await;
    let biz = app.business("Guarded").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
    ] {
        let reply = app
            .post("/v1/webhook-endpoints", &biz.key, json!({ "url": url }))
            .await;
        assert_invalid(&reply, &["url"]);
    }
    let list = app.get("/v1/webhook-endpoints", &biz.key).await;
    assert_eq!(list.body["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_contracts_codes() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let biz = app.business("Strict").await;
    for (body, field) in [
        (json!({ "url": "ftp://example.com/" }), "url"),
        (json!({ "url": "not a url" }), "url"),
        (json!({ "url": "https://user:pw@example.com/" }), "url"),
        (json!({ "url": "http://127.0.0.1/", "types": [] }), "types"),
        (
            json!({ "url": "http://127.0.0.1/", "types": ["nope"] }),
            "types",
        ),
        (
            json!({ "url": "http://127.0.0.1/", "description": "d".repeat(501) }),
            "description",
        ),
        (
            json!({ "url": format!("http://127.0.0.1/{}", "a".repeat(2100)) }),
            "url",
        ),
    ] {
        let reply = app.post("/v1/webhook-endpoints", &biz.key, body).await;
        assert_invalid(&reply, &[field]);
    }
    for body in [
        json!({}),
        json!({ "url": 5 }),
        json!({ "url": "http://127.0.0.1/", "extra": 1 }),
    ] {
        let reply = app.post("/v1/webhook-endpoints", &biz.key, body).await;
        assert_eq!(reply.status, 400, "{reply:?}");
    }
    let (id, _) = endpoint(&app, &biz, json!({ "url": "http://127.0.0.1:9/" })).await;
    for body in [
        json!({ "url": null }),
        json!({ "disabled": null }),
        json!({ "types": [] }),
        // PostgreSQL text cannot hold NUL: a field error, never a 500.
        json!({ "description": "nul\u{0}byte" }),
    ] {
        let reply = app
            .patch(&format!("/v1/webhook-endpoints/{id}"), &biz.key, body)
            .await;
        assert_eq!(reply.status, 422, "{reply:?}");
    }
    let reply = app
        .post(
            "/v1/webhook-endpoints",
            &biz.key,
            json!({ "url": "http://127.0.0.1:9/", "description": "nul\u{0}byte" }),
        )
        .await;
    assert_invalid(&reply, &["description"]);
    for after in [json!(-1), json!(1e300), json!(9007199254740992_u64)] {
        let reply = app
            .post(
                &format!("/v1/webhook-endpoints/{id}/replay"),
                &biz.key,
                json!({ "after": after }),
            )
            .await;
        assert!(reply.status == 422 || reply.status == 400, "{reply:?}");
    }
    for path in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let reply = app
            .get(&format!("/v1/webhook-endpoints/{path}"), &biz.key)
            .await;
        assert_eq!(reply.status, 404, "{reply:?}");
    }
    let reply = app
        .get(
            &format!("/v1/webhook-endpoints/{id}/deliveries?cursor=bogus"),
            &biz.key,
        )
        .await;
    assert_eq!(reply.status, 422, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_endpoints_are_unknown_ids() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let owner = app.business("Owner").await;
    let other = app.business("Other").await;
    let (id, _) = endpoint(&app, &owner, json!({ "url": "http://127.0.0.1:9/" })).await;
    let base = format!("/v1/webhook-endpoints/{id}");
    assert_eq!(app.get(&base, &other.key).await.status, 404);
    assert_eq!(
        app.patch(&base, &other.key, json!({ "disabled": true }))
            .await
            .status,
        404
    );
    assert_eq!(app.delete(&base, &other.key).await.status, 404);
    let rotate = app
        .post(&format!("{base}/rotate-secret"), &other.key, json!({}))
        .await;
    assert_eq!(rotate.status, 404);
    assert_eq!(
        app.get(&format!("{base}/deliveries"), &other.key)
            .await
            .status,
        404
    );
    let replay = app
        .post(&format!("{base}/replay"), &other.key, json!({ "after": 0 }))
        .await;
    assert_eq!(replay.status, 404);
    let list = app.get("/v1/webhook-endpoints", &other.key).await;
    assert_eq!(list.body["data"], json!([]));
    // The owner's endpoint is untouched.
    let mine = app.get(&base, &owner.key).await;
    assert_eq!(mine.body["disabled"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_business_receives_only_its_own_events() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let one = app.business("One").await;
    let two = app.business("Two").await;
    let receiver_one = Receiver::start().await;
    let receiver_two = Receiver::start().await;
    endpoint(&app, &one, json!({ "url": receiver_one.url })).await;
    endpoint(&app, &two, json!({ "url": receiver_two.url })).await;
    let mine = app.customer(&one, 0).await;
    let theirs = app.customer(&two, 0).await;
    let got = receiver_one
        .wait_for("one event", |got| !got.is_empty())
        .await;
    assert_eq!(got[0].subject(), mine.to_string());
    let got = receiver_two
        .wait_for("one event", |got| !got.is_empty())
        .await;
    assert_eq!(got[0].subject(), theirs.to_string());
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_deliver_each_attempt_once_at_a_time_and_in_order() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let second = app.another_instance().await;
    let biz = app.business("Shared").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let receiver = Receiver::answering(Arc::new(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        (200, false)
    }))
    .await;
    endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    let mut customers = Vec::new();
    for _ in 0..4 {
        customers.push(app.customer(&biz, 0).await);
    }
    for round in 0..5 {
        for (n, customer) in customers.iter().enumerate() {
            let server = if (round + n) % 2 == 0 { &app } else { &second };
            rename(server, &biz, *customer, &format!("round {round}")).await;
        }
    }
    let got = receiver.wait_for("24 events", |got| got.len() >= 24).await;
    assert!(
        got.iter().all(|r| r.concurrent_same_id == 0),
        "one delivery sent twice at once"
    );
    let mut by_subject: HashMap<&str, Vec<i64>> = HashMap::new();
    for r in &got {
        by_subject
            .entry(r.subject())
            .or_default()
            .push(r.sequence());
    }
    for (subject, sequences) in by_subject {
        assert!(
            sequences.windows(2).all(|w| w[0] < w[1]),
            "{subject}: {sequences:?}"
        );
    }
}

/// The `standardwebhooks` PyPI package (the spec's reference
/// implementation) verifies a captured delivery. CI installs it into a
/// venv and names its python in ONTAB_TEST_STANDARDWEBHOOKS_PYTHON; without
/// it this test says so and checks only the receiver's own verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_implementation_verifies_a_captured_delivery() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let biz = app.business("Reference").await;
    let receiver = Receiver::start().await;
    let (id, old) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    let rotated = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &biz.key,
            json!({}),
        )
        .await;
    let new = rotated.body["secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    app.product(&biz, 250, 3).await;
    let got = receiver.wait_for("one event", |got| !got.is_empty()).await;
    assert!(verify(&old, &got[0]) && verify(&new, &got[0]));
    let Ok(python) = std::env::var("ONTAB_TEST_STANDARDWEBHOOKS_PYTHON") else {
        eprintln!(
            "ONTAB_TEST_STANDARDWEBHOOKS_PYTHON unset: the standardwebhooks package was not run"
        );
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/verify/standardwebhooks_verify.py"
    );
    let captured = json!({
        "headers": {
            "webhook-id": got[0].id,
            "webhook-timestamp": got[0].timestamp,
            "webhook-signature": got[0].signature,
        },
        "body": String::from_utf8(got[0].body.clone()).expect("a UTF-8 body"),
    });
    for (secret, expect_ok) in [
        (&old, true),
        (&new, true),
        (&"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(), false),
    ] {
        let mut child = tokio::process::Command::new(&python)
            .arg(script)
            .arg(secret)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python starts");
        let mut stdin = child.stdin.take().expect("stdin");
        tokio::io::AsyncWriteExt::write_all(&mut stdin, captured.to_string().as_bytes())
            .await
            .expect("captured delivery written");
        drop(stdin);
        let output = child.wait_with_output().await.expect("python ran");
        assert_eq!(
            output.status.success(),
            expect_ok,
            "standardwebhooks: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `ontab serve` as a process of its own, delivering webhooks with a short
/// timeout and lease; answers it and its base URL once ready.
async fn delivering_process(app: &TestApp) -> tokio::process::Child {
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        listener.local_addr().expect("bound").port()
    };
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ontab"))
        .arg("serve")
        .env("DATABASE_URL", app.database_url())
        .env("ONTAB_LISTEN", format!("127.0.0.1:{port}"))
        .env("ONTAB_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("ONTAB_WEBHOOK_TIMEOUT", "3s")
        .env("ONTAB_WEBHOOK_LEASE_MARGIN", "1s")
        .env("ONTAB_WEBHOOK_POLL_INTERVAL", "100ms")
        .env_remove("ONTAB_NATS_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ontab serve starts");
    let ready = format!("http://127.0.0.1:{port}/readyz");
    for _ in 0..200 {
        if let Ok(reply) = app.http.get(&ready).send().await
            && reply.status() == 200
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ontab serve did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_delivery_loses_nothing_and_repeats_only_the_same_ids() {
    // The harness's server writes and sequences but delivers nothing: the
    // processes under test do.
    let app = TestApp::spawn_with_webhooks(WebhookLaunch {
        concurrency: 0,
        ..WebhookLaunch::default()
    })
    .await;
    let biz = app.business("Killed").await;
    let held = Arc::new(AtomicUsize::new(0));
    let first = held.clone();
    // The very first request hangs (until the gate opens): the server is
    // killed while it is under way.
    let receiver = Receiver::answering(Arc::new(move |_| {
        (200, first.fetch_add(1, Ordering::SeqCst) == 0)
    }))
    .await;
    endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    let mut customers = Vec::new();
    for _ in 0..3 {
        customers.push(app.customer(&biz, 0).await);
    }
    let mut server = delivering_process(&app).await;
    receiver
        .wait_for("a request under way", |got| !got.is_empty())
        .await;
    server.start_kill().expect("kill -9");
    server.wait().await.expect("killed");
    for (n, customer) in customers.iter().enumerate() {
        rename(&app, &biz, *customer, &format!("after the crash {n}")).await;
    }
    receiver.open_gate();
    let _restarted = delivering_process(&app).await;

    // Three customers created, three renamed: six events in the feed.
    let mut events: HashMap<String, Value> = HashMap::new();
    for _ in 0..600 {
        let feed = app.get("/v1/events?after=0&limit=200", &biz.key).await;
        let data = feed.body["data"].as_array().cloned().unwrap_or_default();
        if data.len() == 6 {
            for event in data {
                events.insert(event["id"].as_str().expect("id").to_owned(), event);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(events.len(), 6, "the six events were sequenced");
    // Every event arrives, and the one under way when the server died
    // comes again (its attempt was never recorded).
    let got = receiver
        .wait_for("every event, the interrupted one twice", |got| {
            events.keys().all(|id| got.iter().any(|r| &r.id == id)) && got.len() > events.len()
        })
        .await;
    for received in &got {
        let event = events
            .get(&received.id)
            .unwrap_or_else(|| panic!("an unknown id: {received:?}"));
        assert_eq!(&received.json, event, "a repeat carries the same event");
    }
    let repeated = got.iter().filter(|r| r.seen_before > 0).count();
    assert!(repeated >= 1, "the interrupted delivery was sent again");
}

/// Retention (`ontab_prune_events_for`, as the server calls it) for `biz`, with
/// every event older than tomorrow: answers how many it removed.
async fn prune_everything_allowed(app: &TestApp, biz: &Business) -> i64 {
    let mut sql = app.sql().await;
    let tx = sql.transaction().await.expect("begin");
    as_tenant(&tx, biz.id).await;
    let pruned: i64 = tx
        .query_one(
            "SELECT ontab_prune_events_for(now() + interval '1 day', 1000, $1)",
            &[&biz.id],
        )
        .await
        .expect("prunes")
        .get(0);
    tx.commit().await.expect("commit");
    pruned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_every_event_a_webhook_still_owes() {
    // One attempt, then a retry an hour away: the delivery stays pending.
    let app = TestApp::spawn_with_webhooks(fast_retries(&[3_600_000])).await;
    let biz = app.business("Owed").await;
    // Two events before any endpoint: nobody is owed them.
    app.customer(&biz, 0).await;
    app.customer(&biz, 0).await;
    // Numbered before the endpoint exists (the sequencer runs after commit).
    for _ in 0..600 {
        let feed = app.get("/v1/events?after=0", &biz.key).await;
        if feed.body["next_after"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let receiver = Receiver::answering(Arc::new(|_| (500, false))).await;
    let (id, _) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    let owed = app.customer(&biz, 0).await;
    wait_attempts(&app, &biz, &id, |log| {
        log.first().is_some_and(|a| a["outcome"] == "retrying")
    })
    .await;

    // Everything is past the retention, but the third event is still owed.
    assert_eq!(prune_everything_allowed(&app, &biz).await, 2);
    let feed = app.get("/v1/events?after=0", &biz.key).await;
    assert_eq!(feed.body["oldest_sequence"], 3, "{feed:?}");
    assert_eq!(feed.body["data"][0]["subject_id"], json!(owed.to_string()));
    assert_eq!(attempts(&app, &biz, &id).await.len(), 1);

    // Disabled, the endpoint no longer holds retention back: its pending
    // delivery goes with the event.
    let reply = app
        .patch(
            &format!("/v1/webhook-endpoints/{id}"),
            &biz.key,
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(prune_everything_allowed(&app, &biz).await, 1);
    assert!(attempts(&app, &biz, &id).await.is_empty());
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_subjects_of_two_businesses_drain_in_order_each_event_once() {
    // A receiver slow enough that attempts finish together and are
    // recorded in shared transactions.
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let receiver = Receiver::answering(Arc::new(|_| {
        std::thread::sleep(Duration::from_millis(5));
        (204, false)
    }))
    .await;
    let mut expected = 0;
    let mut businesses = Vec::new();
    for name in ["Batched A", "Batched B"] {
        let biz = app.business(name).await;
        endpoint(
            &app,
            &biz,
            json!({ "url": receiver.url, "types": ["customer.updated"] }),
        )
        .await;
        let mut customers = Vec::new();
        for _ in 0..10 {
            customers.push(app.customer(&biz, 0).await);
        }
        businesses.push((biz, customers));
    }
    let writers = businesses.iter().flat_map(|(biz, customers)| {
        let app = &app;
        customers.iter().map(move |customer| async move {
            for round in 0..5 {
                rename(app, biz, *customer, &format!("round {round}")).await;
            }
        })
    });
    futures::future::join_all(writers).await;
    expected += 2 * 10 * 5;
    let got = receiver
        .wait_for("every update", |got| got.len() >= expected)
        .await;
    assert_eq!(got.len(), expected, "nothing twice");
    assert!(
        got.iter()
            .all(|r| r.seen_before == 0 && r.concurrent_same_id == 0)
    );
    let mut by_subject: HashMap<&str, Vec<i64>> = HashMap::new();
    for r in &got {
        by_subject
            .entry(r.subject())
            .or_default()
            .push(r.sequence());
    }
    assert_eq!(by_subject.len(), 20);
    for (subject, sequences) in by_subject {
        assert_eq!(sequences.len(), 5, "{subject}: {sequences:?}");
        assert!(
            sequences.windows(2).all(|w| w[0] < w[1]),
            "{subject} out of order: {sequences:?}"
        );
    }
    // Each delivery was attempted once and recorded delivered. A 2xx is
    // recorded a few milliseconds after the receiver saw it (the recorder
    // gathers), so the last ones may still be on their way.
    let sql = app.sql().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (recorded, pending) = loop {
        let counts: (i64, i64) = {
            let row = sql
                .query_one(
                    "SELECT (SELECT count(*) FROM webhook_attempts WHERE outcome = 'delivered'),
                            (SELECT count(*) FROM webhook_deliveries
                              WHERE state <> 'delivered' OR lease IS NOT NULL)",
                    &[],
                )
                .await
                .expect("attempts and deliveries");
            (row.get(0), row.get(1))
        };
        if counts == (expected as i64, 0) || std::time::Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((recorded, pending), (expected as i64, 0));
    app.assert_audit_clean().await;
}

/// One fan-out in a tenant transaction of its own: (created, leased).
async fn fan_out(
    sql: &mut tokio_postgres::Client,
    biz: &Business,
    lease: Option<Uuid>,
    max: i32,
) -> (i64, Vec<Uuid>) {
    let tx = sql.transaction().await.expect("begin");
    as_tenant(&tx, biz.id).await;
    let row = tx
        .query_one(
            "SELECT created, leased FROM ontab_webhook_fan_out_leasing(1000, $1, 60000, $2)",
            &[&lease, &max],
        )
        .await
        .expect("fan out");
    tx.commit().await.expect("commit");
    (row.get(0), row.get(1))
}

/// Waits (up to about 6 s) until the feed has numbered `events` events,
/// so a fan-out sees them all.
async fn sequenced(app: &TestApp, biz: &Business, events: i64) {
    for _ in 0..600 {
        let feed = app.get("/v1/events?after=0", &biz.key).await;
        if feed.body["next_after"] == events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn attempts_recorded(sql: &tokio_postgres::Client) -> i64 {
    sql.query_one("SELECT count(*) FROM webhook_attempts", &[])
        .await
        .expect("count")
        .get(0)
}

const RECORD: &str = "SELECT delivery_id, outcome, next_delivery_id
    FROM ontab_webhook_attempted_batch_for($1, 60000, ARRAY[60000]::bigint[], $2, $3,
                                           $4, $5, $6, $7, $8)";

/// Records `attempts` (delivery, status, go on) under `lease`.
async fn record(
    sql: &mut tokio_postgres::Client,
    biz: &Business,
    lease: Uuid,
    attempts: &[(Uuid, i32, bool)],
) -> Vec<(Uuid, String, Option<Uuid>)> {
    let ids: Vec<Uuid> = attempts.iter().map(|a| a.0).collect();
    let status: Vec<i32> = attempts.iter().map(|a| a.1).collect();
    let errors: Vec<Option<String>> = attempts.iter().map(|_| None).collect();
    let durations: Vec<i32> = attempts.iter().map(|_| 3).collect();
    let at: Vec<chrono::DateTime<chrono::Utc>> =
        attempts.iter().map(|_| chrono::Utc::now()).collect();
    let go_on: Vec<bool> = attempts.iter().map(|a| a.2).collect();
    let tx = sql.transaction().await.expect("begin");
    as_tenant(&tx, biz.id).await;
    let rows = tx
        .query(
            RECORD,
            &[
                &lease as &(dyn tokio_postgres::types::ToSql + Sync),
                &ids,
                &status,
                &errors,
                &durations,
                &at,
                &go_on,
                &biz.id,
            ],
        )
        .await
        .expect("records");
    tx.commit().await.expect("commit");
    rows.iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_attempts_is_recorded_only_under_its_lease_and_leases_what_follows() {
    // Nothing is sent: this server delivers nothing; the test plays the
    // delivery worker in SQL.
    let app = TestApp::spawn_with_webhooks(WebhookLaunch {
        concurrency: 0,
        ..WebhookLaunch::default()
    })
    .await;
    let biz = app.business("Recorded").await;
    let (endpoint_id, _) = endpoint(
        &app,
        &biz,
        json!({ "url": "http://127.0.0.1:9/never", "types": ["customer.updated"] }),
    )
    .await;
    let a = app.customer(&biz, 0).await;
    let b = app.customer(&biz, 0).await;
    rename(&app, &biz, a, "a1").await;
    rename(&app, &biz, b, "b1").await;
    rename(&app, &biz, a, "a2").await;
    sequenced(&app, &biz, 5).await;
    let mut sql = app.sql().await;
    let lease = Uuid::new_v4();
    // Each step in a transaction of its own, as the server takes them: on
    // Citus the claim, a function of ontab_system's, may not touch what
    // ontab_app wrote in the same transaction.
    assert_eq!(fan_out(&mut sql, &biz, None, 0).await, (3, vec![]));
    let claimed = sql
        .query(
            "SELECT delivery_id FROM ontab_claim_webhook_deliveries($1, 60000, 100)",
            &[&lease],
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2, "one head per subject");
    let (a1, a2, b1) = {
        let tx = sql.transaction().await.expect("begin");
        as_tenant(&tx, biz.id).await;
        let of = |subject: Uuid| {
            let tx = &tx;
            async move {
                tx.query(
                    "SELECT id FROM webhook_deliveries WHERE subject_id = $1 ORDER BY sequence",
                    &[&subject],
                )
                .await
                .expect("deliveries")
                .iter()
                .map(|row| row.get::<_, Uuid>(0))
                .collect::<Vec<_>>()
            }
        };
        let (of_a, of_b) = (of(a).await, of(b).await);
        tx.commit().await.expect("commit");
        (of_a[0], of_a[1], of_b[0])
    };

    // Another lease records nothing and is answered nothing.
    let stranger = record(&mut sql, &biz, Uuid::new_v4(), &[(a1, 200, true)]).await;
    assert!(stranger.is_empty(), "{stranger:?}");
    assert_eq!(attempts_recorded(&sql).await, 0);

    // Delivered: a's next is leased to us; b's failure is retried later.
    let mut answered = record(&mut sql, &biz, lease, &[(a1, 200, true), (b1, 500, true)]).await;
    answered.sort_by_key(|(id, _, _)| *id != a1);
    assert_eq!(
        answered,
        vec![
            (a1, "delivered".to_owned(), Some(a2)),
            (b1, "retrying".to_owned(), None)
        ]
    );
    assert_eq!(attempts_recorded(&sql).await, 2);
    let row = sql
        .query_one(
            "SELECT state, attempts, lease, next_attempt_at > now() + interval '50 seconds'
               FROM webhook_deliveries WHERE id = $1",
            &[&b1],
        )
        .await
        .expect("b1");
    assert_eq!(row.get::<_, String>(0), "pending");
    assert_eq!(row.get::<_, i32>(1), 1);
    assert_eq!(row.get::<_, Option<Uuid>>(2), None);
    assert!(row.get::<_, bool>(3), "retried after the schedule's wait");
    let leased: Option<Uuid> = sql
        .query_one("SELECT lease FROM webhook_deliveries WHERE id = $1", &[&a2])
        .await
        .expect("a2")
        .get(0);
    assert_eq!(leased, Some(lease));

    // 410 disables the endpoint, leaves the delivery pending and leases
    // nothing more; recorded twice, the second finds no lease.
    let gone = record(&mut sql, &biz, lease, &[(a2, 410, true)]).await;
    assert_eq!(gone, vec![(a2, "disabled".to_owned(), None)]);
    assert!(
        record(&mut sql, &biz, lease, &[(a2, 200, true)])
            .await
            .is_empty()
    );
    let endpoint_row = sql
        .query_one(
            "SELECT disabled, disabled_reason FROM webhook_endpoints WHERE id = $1::text::uuid",
            &[&endpoint_id],
        )
        .await
        .expect("endpoint");
    assert!(endpoint_row.get::<_, bool>(0));
    assert_eq!(
        endpoint_row.get::<_, Option<String>>(1).as_deref(),
        Some("gone")
    );
    let a2_state: String = sql
        .query_one("SELECT state FROM webhook_deliveries WHERE id = $1", &[&a2])
        .await
        .expect("a2")
        .get(0);
    assert_eq!(a2_state, "pending");
    assert_eq!(attempts_recorded(&sql).await, 3);
    app.assert_audit_clean().await;
}

/// The deliveries of `subject`, in sequence order: (id, endpoint, lease).
async fn queue_of(sql: &tokio_postgres::Client, subject: Uuid) -> Vec<(Uuid, Uuid, Option<Uuid>)> {
    sql.query(
        "SELECT id, endpoint_id, lease FROM webhook_deliveries WHERE subject_id = $1 ORDER BY sequence",
        &[&subject],
    )
    .await
    .expect("deliveries")
    .iter()
    .map(|row| (row.get(0), row.get(1), row.get(2)))
    .collect()
}

/// The deliveries of `subject`, in sequence order.
async fn deliveries_of(sql: &tokio_postgres::Client, subject: Uuid) -> Vec<Uuid> {
    queue_of(sql, subject)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subjects_deliveries_are_leased_as_a_run_from_its_head_while_each_is_free() {
    // The test plays the delivery worker in SQL, as above.
    let app = TestApp::spawn_with_webhooks(WebhookLaunch {
        concurrency: 0,
        ..WebhookLaunch::default()
    })
    .await;
    let biz = app.business("Runs").await;
    endpoint(
        &app,
        &biz,
        json!({ "url": "http://127.0.0.1:9/never", "types": ["customer.updated"] }),
    )
    .await;
    let a = app.customer(&biz, 0).await;
    for name in ["a1", "a2", "a3", "a4"] {
        rename(&app, &biz, a, name).await;
    }
    sequenced(&app, &biz, 5).await;
    let mut sql = app.sql().await;
    let lease = Uuid::new_v4();

    // The fan-out leases the new head and the rest of its subject with it.
    let (created, leased) = fan_out(&mut sql, &biz, Some(lease), 10).await;
    assert_eq!(created, 4);
    let run = deliveries_of(&sql, a).await;
    assert_eq!(run.len(), 4);
    let mut sorted = leased.clone();
    sorted.sort_by_key(|id| run.iter().position(|r| r == id));
    assert_eq!(sorted, run, "the whole run is leased");

    // Two of the run sent and delivered; going on re-leases the rest,
    // already this server's, as the next run.
    let mut answered = record(
        &mut sql,
        &biz,
        lease,
        &[(run[0], 200, false), (run[1], 200, true)],
    )
    .await;
    answered.sort_by_key(|(id, _, next)| (run.iter().position(|r| r == id), *next));
    let mut expected = vec![
        (run[0], "delivered".to_owned(), None),
        (run[1], "delivered".to_owned(), Some(run[2])),
        (run[1], "delivered".to_owned(), Some(run[3])),
    ];
    expected.sort_by_key(|(id, _, next)| (run.iter().position(|r| r == id), *next));
    assert_eq!(answered, expected);

    // A delivery another server holds ends the run before it: nothing
    // after it is taken either.
    let stranger = Uuid::new_v4();
    sql.execute(
        "UPDATE webhook_deliveries SET lease = $2, leased_until = now() + interval '1 hour'
          WHERE id = $1",
        &[&run[3], &stranger],
    )
    .await
    .expect("another server's lease");
    let answered = record(&mut sql, &biz, lease, &[(run[2], 200, true)]).await;
    assert_eq!(answered, vec![(run[2], "delivered".to_owned(), None)]);
    let holder: Option<Uuid> = sql
        .query_one(
            "SELECT lease FROM webhook_deliveries WHERE id = $1",
            &[&run[3]],
        )
        .await
        .expect("a4")
        .get(0);
    assert_eq!(holder, Some(stranger));
    assert_eq!(attempts_recorded(&sql).await, 3);
    app.assert_audit_clean().await;
}

/// The leases of `subject`'s deliveries to `endpoint`, in sequence order.
async fn leases_of(
    sql: &tokio_postgres::Client,
    endpoint: &str,
    subject: Uuid,
) -> Vec<Option<Uuid>> {
    let endpoint: Uuid = endpoint.parse().expect("endpoint id");
    queue_of(sql, subject)
        .await
        .into_iter()
        .filter(|(_, to, _)| *to == endpoint)
        .map(|(_, _, lease)| lease)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fan_out_leases_new_heads_with_their_runs_and_no_more_subjects_than_asked() {
    // Migration 0025 decides at insert which new deliveries are leased;
    // this pins down its rule, played in SQL as above.
    let app = TestApp::spawn_with_webhooks(WebhookLaunch {
        concurrency: 0,
        ..WebhookLaunch::default()
    })
    .await;
    let biz = app.business("Heads").await;
    let only_updates = json!({ "url": "http://127.0.0.1:9/never", "types": ["customer.updated"] });
    let (first, _) = endpoint(&app, &biz, only_updates.clone()).await;
    let [a, b, c] = [
        app.customer(&biz, 0).await,
        app.customer(&biz, 1).await,
        app.customer(&biz, 2).await,
    ];
    let mut sql = app.sql().await;

    // Without a lease to give, nothing is leased: a's delivery waits.
    rename(&app, &biz, a, "a0").await;
    sequenced(&app, &biz, 4).await;
    assert_eq!(fan_out(&mut sql, &biz, None, 10).await, (1, vec![]));

    // a has a delivery pending, so its new ones are not heads; b's first
    // new one is, and its run is the next 20; c's would be, but one
    // subject was asked for and b's is older.
    rename(&app, &biz, a, "a1").await;
    for n in 0..22 {
        rename(&app, &biz, b, &format!("b{n}")).await;
    }
    rename(&app, &biz, c, "c0").await;
    sequenced(&app, &biz, 28).await;
    let lease = Uuid::new_v4();
    let (created, leased) = fan_out(&mut sql, &biz, Some(lease), 1).await;
    assert_eq!(created, 24);
    assert_eq!(leases_of(&sql, &first, a).await, [None, None]);
    let mut run = vec![Some(lease); 20];
    run.extend([None, None]);
    assert_eq!(leases_of(&sql, &first, b).await, run);
    assert_eq!(leases_of(&sql, &first, c).await, [None]);
    let b_deliveries = deliveries_of(&sql, b).await;
    let mut leased_sorted = leased.clone();
    leased_sorted.sort_by_key(|id| b_deliveries.iter().position(|d| d == id));
    assert_eq!(
        leased_sorted,
        b_deliveries[..20],
        "what it leased is what it answers"
    );

    // Each endpoint has its own heads: c is pending at the first, and new
    // at a second endpoint made now.
    let (second, _) = endpoint(&app, &biz, only_updates).await;
    rename(&app, &biz, c, "c1").await;
    sequenced(&app, &biz, 29).await;
    let (created, leased) = fan_out(&mut sql, &biz, Some(lease), 10).await;
    assert_eq!(created, 2);
    assert_eq!(leases_of(&sql, &first, c).await, [None, None]);
    assert_eq!(leases_of(&sql, &second, c).await, [Some(lease)]);
    assert_eq!(leased.len(), 1);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stops_at_a_failure_and_its_rest_follows_the_retry_in_order() {
    // A lease far longer than the test may wait: what the run did not send
    // must go on once the retry succeeds, not when the lease runs out.
    let app = TestApp::spawn_with_webhooks(WebhookLaunch {
        lease_margin: Duration::from_secs(600),
        ..fast_retries(&[100])
    })
    .await;
    let biz = app.business("Run with a failure").await;
    let failed_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let receiver = Receiver::answering(Arc::new({
        let failed_once = failed_once.clone();
        move |r: &Received| {
            if r.event_type() == "customer.created" {
                // Held until the backlog below is written.
                return (204, true);
            }
            if r.json["data"]["name"] == "n2" && !failed_once.swap(true, Ordering::SeqCst) {
                return (500, false);
            }
            (204, false)
        }
    }))
    .await;
    let (endpoint_id, _) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    let customer = app.customer(&biz, 0).await;
    receiver
        .wait_for("customer.created, held", |got| got.len() == 1)
        .await;
    for n in 0..6 {
        rename(&app, &biz, customer, &format!("n{n}")).await;
    }
    receiver.open_gate();
    let got = receiver
        .wait_for("the six updates", |got| {
            got.iter()
                .filter(|r| r.event_type() == "customer.updated")
                .map(|r| r.id.clone())
                .collect::<std::collections::HashSet<_>>()
                .len()
                == 6
        })
        .await;
    let names: Vec<String> = got
        .iter()
        .filter(|r| r.event_type() == "customer.updated")
        .map(|r| r.json["data"]["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(names, ["n0", "n1", "n2", "n2", "n3", "n4", "n5"]);
    let sequences: Vec<i64> = got.iter().map(Received::sequence).collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] <= pair[1]),
        "out of order: {sequences:?}"
    );
    let log = wait_attempts(&app, &biz, &endpoint_id, |log| log.len() == 8).await;
    let retried: Vec<(&str, i64)> = log
        .iter()
        .rev()
        .filter(|a| a["status_code"] == 500 || a["attempt"] == 2)
        .map(|a| {
            (
                a["outcome"].as_str().unwrap_or(""),
                a["attempt"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(retried, [("retrying", 1), ("delivered", 2)]);
    app.assert_audit_clean().await;
}

/// What a delivered event leaves behind (migrations/0031): its attempt
/// alone, with no delivery row; the endpoint's settled cursor catches up
/// with its fanned-out one; a failure is the only thing that makes a row.
/// The audit finds an attempt without a row that did not deliver, and a
/// settled cursor past the fanned-out one.
#[tokio::test]
async fn a_delivered_event_leaves_only_its_attempt_and_the_cursor_settles() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch::default()).await;
    let biz = app.business("Settled").await;
    let receiver = Receiver::start().await;
    let (endpoint_id, _) = endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    for n in 0..5 {
        app.customer(&biz, n).await;
    }
    let log = wait_attempts(&app, &biz, &endpoint_id, |log| log.len() == 5).await;
    for attempt in &log {
        assert_eq!(attempt["outcome"], "delivered", "{attempt:#}");
        assert_eq!(attempt["attempt"], 1, "{attempt:#}");
        assert_eq!(attempt["delivery_id"], Value::Null, "{attempt:#}");
    }
    let endpoint_uuid: Uuid = endpoint_id.parse().expect("uuid");
    let mut sql = app.sql().await;
    let rows: i64 = sql
        .query_one(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1",
            &[&endpoint_uuid],
        )
        .await
        .expect("rows")
        .get(0);
    assert_eq!(rows, 0, "a delivered event needs no delivery row");
    let mut settled = (0, -1);
    for _ in 0..100 {
        let row = sql
            .query_one(
                "SELECT settled_through, fanned_out_through FROM webhook_endpoints WHERE id = $1",
                &[&endpoint_uuid],
            )
            .await
            .expect("cursors");
        settled = (row.get::<_, i64>(0), row.get::<_, i64>(1));
        if settled.0 == settled.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(settled.0, settled.1, "the settled cursor catches up");
    assert!(settled.1 >= 5, "{settled:?}");
    app.assert_audit_clean().await;

    let tx = crate::helpers::triggers_off(&mut sql).await;
    tx.batch_execute(
        "ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_without_delivery_check;
         UPDATE webhook_attempts SET outcome = 'retrying'
          WHERE id = (SELECT id FROM webhook_attempts WHERE delivery_id IS NULL ORDER BY id LIMIT 1);
         ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_settled_check;
         UPDATE webhook_endpoints SET settled_through = fanned_out_through + 1;",
    )
    .await
    .expect("corruption applies");
    tx.commit().await.expect("the corruption commits");
    let report = ontab::app::audit::audit(&mut sql, None)
        .await
        .expect("audit runs");
    let found: Vec<&str> = report
        .violations
        .iter()
        .map(|v| v.detail.as_str())
        .collect();
    assert_eq!(found.len(), 2, "{:#?}", report.violations);
    assert!(
        found
            .iter()
            .any(|d| d.contains("has no delivery but is attempt 1 with outcome retrying")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|d| d.contains("settled cursor")),
        "{found:#?}"
    );

    // Deleting the endpoint takes its attempts along, rows or not.
    let deleted = app
        .delete(&format!("/v1/webhook-endpoints/{endpoint_id}"), &biz.key)
        .await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let left: i64 = sql
        .query_one(
            "SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1",
            &[&endpoint_uuid],
        )
        .await
        .expect("attempts")
        .get(0);
    assert_eq!(left, 0, "the deleted endpoint's attempts are gone");
}

/// A row is sent while runs handed out in memory keep every slot busy.
/// With one slot and a receiver taking 50 ms an answer, a steady stream of
/// new subjects keeps runs in memory waiting for the slot, and the cap on
/// subjects in memory sends the rest to rows. A round that claimed rows
/// only into free slots found none free as long as the stream lasted, and
/// the failed event's retry (a row, due 50 ms later) waited for it to end;
/// rows are now claimed while fewer of their runs than slots are under way,
/// and queue for the slot with the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_sent_while_runs_from_memory_keep_every_slot_busy() {
    let app = TestApp::spawn_with_webhooks(WebhookLaunch {
        concurrency: 1,
        ..fast_retries(&[50, 50, 50])
    })
    .await;
    let biz = app.business("Busy").await;
    let failing = Arc::new(std::sync::Mutex::new(String::new()));
    let fails = failing.clone();
    let receiver = Receiver::answering_after(
        Duration::from_millis(50),
        Arc::new(move |r: &Received| {
            let first_of_failing =
                r.seen_before == 0 && *fails.lock().expect("lock") == r.subject();
            (if first_of_failing { 500 } else { 204 }, false)
        }),
    )
    .await;
    endpoint(&app, &biz, json!({ "url": receiver.url })).await;
    // Its subject is known before its event can be sent: the event is
    // sequenced after the reply, and fanned out after that.
    let customer = app.customer(&biz, 0).await;
    *failing.lock().expect("lock") = customer.to_string();
    let subject = customer.to_string();
    let retried = |got: &[Received]| {
        got.iter()
            .any(|r| r.subject() == subject && r.seen_before >= 1)
    };
    let started = std::time::Instant::now();
    let mut created = 0;
    while !retried(&receiver.received()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the retry waited for the stream of new subjects ({created} created)"
        );
        app.customer(&biz, 0).await;
        created += 1;
    }
    let got = receiver.received();
    let first = got
        .iter()
        .find(|r| r.subject() == subject)
        .expect("the first attempt");
    assert_eq!(first.seen_before, 0);
    // New subjects past the cap were left to rows while the stream ran.
    let sql = app.sql().await;
    let rows: i64 = sql
        .query_one("SELECT count(*) FROM webhook_deliveries", &[])
        .await
        .expect("count")
        .get(0);
    assert!(rows >= 2, "{rows} delivery rows: the cap was never reached");
    app.assert_audit_clean().await;
}
