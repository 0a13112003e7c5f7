//! Events published to NATS JetStream at 127.0.0.1:4222 (CI starts
//! `nats-server -js` there; see .ci/run): subject
//! `ontab.<business_id>.<type>`, `Nats-Msg-Id` = event id, in sequence
//! order, stored in the stream ONTAB_EVENTS.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::helpers::{TestApp, WebhookLaunch};

const NATS: &str = "nats://127.0.0.1:4222";

/// The test NATS, or `None` (said aloud) when nothing answers and CI did
/// not ask for it (ONTAB_TEST_REQUIRE_NATS=1 makes that a failure).
async fn nats() -> Option<async_nats::Client> {
    match async_nats::connect(NATS).await {
        Ok(client) => Some(client),
        Err(error) if std::env::var("ONTAB_TEST_REQUIRE_NATS").is_err() => {
            eprintln!("no NATS at {NATS} ({error}): NATS publishing not tested here");
            None
        }
        Err(error) => panic!("NATS at {NATS} is required: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_published_to_jetstream_in_sequence_order() {
    let Some(client) = nats().await else { return };
    let app = TestApp::spawn_with_webhooks(WebhookLaunch {
        nats_url: Some(NATS.to_owned()),
        ..WebhookLaunch::default()
    })
    .await;
    let biz = app.business("Streamed").await;
    let mut subscription = client
        .subscribe(format!("ontab.{}.>", biz.id))
        .await
        .expect("subscribed");
    client.flush().await.expect("subscription registered");
    let customer = app.customer(&biz, 1000).await;
    let product = app.product(&biz, 100, 5).await;
    let purchase = app.purchase(&biz, customer, &[(product, 2)]).await;
    assert_eq!(purchase.status, 201, "{purchase:?}");

    // How many events that made: the feed, once the purchase is in it.
    let mut count = 0;
    for _ in 0..600 {
        let feed = app.get("/v1/events?after=0&limit=200", &biz.key).await;
        let data = feed.body["data"].as_array().cloned().unwrap_or_default();
        if data.iter().any(|event| event["type"] == "purchase.created") {
            count = data.len();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(count >= 3, "the feed never showed the purchase");

    let mut got = Vec::new();
    while got.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(60), subscription.next())
            .await
            .expect("events published within a minute")
            .expect("subscription open");
        got.push(message);
    }
    let mut sequences = Vec::new();
    for message in &got {
        let event: Value = serde_json::from_slice(&message.payload).expect("event JSON");
        let event_type = event["type"].as_str().expect("type");
        assert_eq!(
            message.subject.as_str(),
            format!("ontab.{}.{event_type}", biz.id)
        );
        let msg_id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .map(|value| value.as_str().to_owned());
        assert_eq!(msg_id.as_deref(), event["id"].as_str());
        sequences.push(event["sequence"].as_i64().expect("sequence"));
    }
    let expected: Vec<i64> = (1..=i64::try_from(count).expect("a small count")).collect();
    assert_eq!(sequences, expected);

    // Stored in the stream, not only passed by.
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream("ONTAB_EVENTS")
        .await
        .expect("the stream exists");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.subjects, ["ontab.>"]);
    let stored = stream
        .get_last_raw_message_by_subject(&format!("ontab.{}.purchase.created", biz.id))
        .await
        .expect("the purchase is stored");
    let event: Value = serde_json::from_slice(&stored.payload).expect("event JSON");
    assert_eq!(event["sequence"], sequences[count - 1]);
}
