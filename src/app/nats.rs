//! Publishing every event to NATS JetStream (`--nats-url`): subject
//! `ontab.<business_id>.<type>`, header `Nats-Msg-Id` = the event id, the
//! event JSON as payload, into the stream [`STREAM`] (subjects `ontab.>`,
//! created if absent with JetStream's defaults: file storage, limits
//! retention, a 2-minute duplicate window).
//!
//! Per business, events go one at a time in sequence order, each awaiting
//! JetStream's acknowledgement before the next; the business's cursor
//! (`nats_cursors`, locked FOR UPDATE SKIP LOCKED so one server publishes a
//! business at a time) then moves past what was acknowledged, in the same
//! transaction. A crash before that commit publishes those events again:
//! at least once, the duplicates carrying the same Nats-Msg-Id (JetStream
//! drops those within its duplicate window; consumers dedupe by id beyond).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::Notify;

use crate::app::{Actor, App, AppError};
use crate::db::deliveries;

/// The stream events are published into.
pub const STREAM: &str = "ONTAB_EVENTS";
/// Its subjects.
pub const STREAM_SUBJECTS: &str = "ontab.>";
/// Events published per business per round.
const BATCH: i64 = 500;
/// Businesses published per round.
const BUSINESSES: i32 = 500;

/// How the publisher runs.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    pub url: String,
    /// How often to look for work when no notification comes.
    pub poll: Duration,
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("JetStream: {0}")]
    Nats(String),
}

impl From<crate::db::DbError> for PublishError {
    fn from(error: crate::db::DbError) -> Self {
        PublishError::App(error.into())
    }
}

/// Connects (retrying until it can), makes sure the stream exists, then
/// publishes until the task is aborted.
pub async fn run(app: Arc<App>, settings: NatsSettings) {
    let wake = Arc::new(Notify::new());
    let _listener =
        super::webhooks::delivery::AbortOnDrop(tokio::spawn(listen(app.clone(), wake.clone())));
    let js = loop {
        match connect(&settings.url).await {
            Ok(js) => break js,
            Err(error) => {
                metrics::counter!("ontab_nats_publish_failures_total").increment(1);
                tracing::warn!(%error, "cannot reach NATS JetStream; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    tracing::info!(
        stream = STREAM,
        subjects = STREAM_SUBJECTS,
        "publishing events to NATS JetStream"
    );
    loop {
        if let Err(error) = round(&app, &js).await {
            metrics::counter!("ontab_nats_publish_failures_total").increment(1);
            tracing::warn!(%error, "publishing events to NATS failed; retrying");
        }
        let _ = tokio::time::timeout(settings.poll, wake.notified()).await;
    }
}

async fn connect(url: &str) -> Result<jetstream::Context, String> {
    let client = async_nats::connect(url)
        .await
        .map_err(|error| error.to_string())?;
    let js = jetstream::new(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![STREAM_SUBJECTS.to_owned()],
        ..Default::default()
    })
    .await
    .map_err(|error| error.to_string())?;
    Ok(js)
}

async fn listen(app: Arc<App>, wake: Arc<Notify>) {
    loop {
        if let Err(error) = app.db().listen_events(|_| wake.notify_one()).await {
            tracing::debug!(%error, "cannot LISTEN for events; polling only");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn round(app: &App, js: &jetstream::Context) -> Result<(), PublishError> {
    for business_id in deliveries::nats_due(app.db(), BUSINESSES).await? {
        publish_business(app, js, business_id).await?;
    }
    Ok(())
}

/// Publishes the business's next events in order, under its cursor's lock.
async fn publish_business(
    app: &App,
    js: &jetstream::Context,
    business_id: uuid::Uuid,
) -> Result<(), PublishError> {
    let actor = Actor::System.recorded();
    let (tx, _) = app.db().begin(business_id, &[], &actor).await?;
    let Some(through) = deliveries::lock_nats_cursor(&tx).await? else {
        return Ok(());
    };
    let events = deliveries::events_after(&tx, through, BATCH).await?;
    let mut acknowledged = through;
    let mut failure = None;
    for event in &events {
        let subject = format!("ontab.{business_id}.{}", event.event_type);
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(error) => {
                failure = Some(PublishError::Nats(format!("event body: {error}")));
                break;
            }
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            event.id.to_string().as_str(),
        );
        let acked = async {
            js.publish_with_headers(subject, headers, body.into())
                .await
                .map_err(|error| error.to_string())?
                .await
                .map_err(|error| error.to_string())
        }
        .await;
        match acked {
            Ok(_) => {
                acknowledged = event.sequence;
                metrics::counter!("ontab_nats_published_total").increment(1);
            }
            Err(error) => {
                failure = Some(PublishError::Nats(error));
                break;
            }
        }
    }
    if acknowledged > through {
        deliveries::advance_nats_cursor(&tx, acknowledged).await?;
    }
    tx.commit().await?;
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
