//! The delivery engine, a background task of `ontab serve`. Every round:
//! fan new events out into deliveries (per endpoint, in its tenant's
//! transaction), lease the deliveries that may go now, and attempt each in
//! a task of its own, up to `concurrency` at once. A round starts when the
//! sequencer notifies (`ontab_events`), when an attempt finishes (its
//! subject's next delivery may go), or every `poll` otherwise. A task whose
//! delivery succeeded leases its subject's next one itself, in the same
//! transaction that records the success (migrations/0008), and goes on
//! with it, up to `SUBJECT_RUN` in a row: a subject with a backlog drains
//! at the speed of its receiver rather than one event per round.
//!
//! All state is in PostgreSQL (migrations/0006): a server killed at any
//! moment leaves at worst a leased delivery, attempted again once the lease
//! expires, with the same webhook-id. Per-(endpoint, subject) order, and
//! one attempt at a time per delivery across servers, are the claim's
//! (`ontab_claim_webhook_deliveries`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use super::WebhookSettings;
use super::guard::GuardedResolver;
use crate::app::{Actor, App, AppError};
use crate::db::deliveries::{self, Attempted, Job};
use crate::domain::webhook::{EndpointUrl, is_public, signature_header};

/// Events fanned out per endpoint per round.
const FAN_OUT_BATCH: i32 = 1000;
/// Businesses fanned out per round.
const FAN_OUT_BUSINESSES: i32 = 500;
/// Deliveries one task sends in a row for one subject before it gives its
/// slot back (others' subjects are claimed by the rounds meanwhile: the
/// slots are shared, so this only bounds how long one task runs).
const SUBJECT_RUN: usize = 200;
/// How often the backlog gauge is refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(10);

/// The engine's shared parts.
struct Engine {
    app: Arc<App>,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// This server's lease: what it claims, it alone may record.
    lease: Uuid,
    wake: Notify,
    slots: Arc<Semaphore>,
}

/// The HTTP client deliveries go out on: no redirects, no proxies, the
/// timeout, and (unless private addresses are allowed) the guarded resolver.
pub fn client(settings: &WebhookSettings) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("ontab-webhooks/", env!("CARGO_PKG_VERSION")));
    let builder = if settings.allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(GuardedResolver))
    };
    builder.build()
}

/// Runs the engine until the task is aborted.
pub async fn run(app: Arc<App>) {
    let settings = app.webhooks.clone();
    let client = match client(&settings) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhook deliveries are off: no HTTP client");
            return;
        }
    };
    let engine = Arc::new(Engine {
        slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        app,
        settings,
        client,
        lease: Uuid::new_v4(),
        wake: Notify::new(),
    });
    let _listener = AbortOnDrop(tokio::spawn(listen(engine.clone())));
    let _gauges = AbortOnDrop(tokio::spawn(backlog_gauge(engine.clone())));
    loop {
        if let Err(error) = round(&engine).await {
            tracing::warn!(%error, "webhook delivery round failed");
        }
        let _ = tokio::time::timeout(engine.settings.poll, engine.wake.notified()).await;
    }
}

/// A helper task that ends with the task that started it.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes the engine on every notification of the sequencer; reconnects
/// after a lost connection (polling covers the gap).
async fn listen(engine: Arc<Engine>) {
    loop {
        if let Err(error) = engine
            .app
            .db()
            .listen_events(|_| engine.wake.notify_one())
            .await
        {
            tracing::debug!(%error, "cannot LISTEN for events; polling only");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn round(engine: &Arc<Engine>) -> Result<(), AppError> {
    fan_out(&engine.app).await?;
    let free = engine.slots.available_permits();
    if free == 0 {
        return Ok(());
    }
    let lease_ms = i32::try_from(engine.settings.lease.as_millis()).unwrap_or(i32::MAX);
    let limit = i32::try_from(free).unwrap_or(i32::MAX);
    let claimed = deliveries::claim(engine.app.db(), engine.lease, lease_ms, limit).await?;
    for (business_id, delivery_id) in claimed {
        let Ok(permit) = engine.slots.clone().try_acquire_owned() else {
            // Cannot happen (we claimed no more than were free); the lease
            // simply expires and the delivery goes later.
            break;
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut next = Some(delivery_id);
            let mut sent = 0;
            while let Some(delivery_id) = next.take() {
                match attempt(&engine, business_id, delivery_id, sent + 1 < SUBJECT_RUN).await {
                    Ok(following) => next = following,
                    Err(error) => {
                        tracing::warn!(%error, %delivery_id, "webhook attempt could not be recorded")
                    }
                }
                sent += 1;
            }
            drop(permit);
            engine.wake.notify_one();
        });
    }
    Ok(())
}

/// Fans out every business with events not yet handed to its endpoints.
pub async fn fan_out(app: &App) -> Result<i64, AppError> {
    let mut created = 0;
    let actor = Actor::System.recorded();
    for business_id in deliveries::fan_out_due(app.db(), FAN_OUT_BUSINESSES).await? {
        let (tx, _) = app.db().begin(business_id, &[], &actor).await?;
        deliveries::commit_asynchronously(&tx).await?;
        created += deliveries::fan_out(&tx, FAN_OUT_BATCH).await?;
        tx.commit().await?;
    }
    Ok(created)
}

/// Sends one leased delivery and records what came of it. When it was
/// delivered and `continue_subject`, also leases the subject's next
/// delivery in the same transaction and answers it.
async fn attempt(
    engine: &Engine,
    business_id: Uuid,
    delivery_id: Uuid,
    continue_subject: bool,
) -> Result<Option<Uuid>, AppError> {
    let actor = Actor::System.recorded();
    let db = engine.app.db();
    let (tx, _) = db.begin(business_id, &[], &actor).await?;
    let job = deliveries::load(&tx, delivery_id, engine.lease).await?;
    tx.commit().await?;
    let Some(job) = job else {
        return Ok(None);
    };
    let attempted = send(engine, &job).await;
    let schedule: Vec<i64> = engine
        .settings
        .retry_schedule
        .iter()
        .map(|wait| i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
        .collect();
    let (tx, _) = db.begin(business_id, &[], &actor).await?;
    deliveries::commit_asynchronously(&tx).await?;
    let outcome =
        deliveries::attempted(&tx, delivery_id, engine.lease, &attempted, &schedule).await?;
    let next = if continue_subject && outcome.as_deref() == Some("delivered") {
        let lease_ms = i32::try_from(engine.settings.lease.as_millis()).unwrap_or(i32::MAX);
        deliveries::claim_next(
            &tx,
            engine.lease,
            lease_ms,
            job.endpoint_id,
            job.event.subject_id,
        )
        .await?
    } else {
        None
    };
    tx.commit().await?;
    let label = outcome.as_deref().unwrap_or("lease_lost").to_owned();
    metrics::counter!("ontab_webhook_attempts_total", "outcome" => label.clone()).increment(1);
    match label.as_str() {
        "delivered" => {
            let lag = chrono::Utc::now() - job.event.created_at;
            metrics::histogram!("ontab_webhook_delivery_lag_seconds")
                .record(lag.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
        }
        "disabled" => {
            tracing::warn!(endpoint_id = %job.endpoint_id, "endpoint answered 410 Gone: disabled")
        }
        "gave_up" => {
            tracing::warn!(endpoint_id = %job.endpoint_id, event_id = %job.event.id, "gave up delivering an event")
        }
        _ => {}
    }
    Ok(next)
}

/// POSTs the event, signed, and says what happened. Never follows a
/// redirect; never reaches a non-public address unless allowed.
async fn send(engine: &Engine, job: &Job) -> Attempted {
    let attempted_at = chrono::Utc::now();
    let started = Instant::now();
    let (status_code, error) = match post(engine, job).await {
        Ok(status) if (200..300).contains(&status) => (Some(i32::from(status)), None),
        Ok(status) if (300..400).contains(&status) => (
            Some(i32::from(status)),
            Some("redirects are not followed".to_owned()),
        ),
        Ok(status) => (Some(i32::from(status)), None),
        Err(error) => (None, Some(error)),
    };
    Attempted {
        status_code,
        error,
        duration_ms: i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX),
        attempted_at,
    }
}

async fn post(engine: &Engine, job: &Job) -> Result<u16, String> {
    let url = EndpointUrl::parse("url", &job.url).map_err(|error| error.message)?;
    if !engine.settings.allow_private
        && let Some(ip) = url.ip_literal()
        && !is_public(ip)
    {
        return Err(format!("{ip} is not a public address"));
    }
    let body = serde_json::to_vec(&job.event).map_err(|error| format!("event body: {error}"))?;
    let id = job.event.id.to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = signature_header(&job.secrets, &id, timestamp, &body);
    let response = engine
        .client
        .post(url.url().clone())
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    Ok(response.status().as_u16())
}

/// What went wrong, for the deliveries log: the chain of causes (the
/// guard's refusal among them), never the request (no secrets).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Keeps `ontab_webhook_backlog{endpoint_id}` current; endpoints whose
/// backlog emptied go back to 0.
async fn backlog_gauge(engine: Arc<Engine>) {
    let mut shown: Vec<Uuid> = Vec::new();
    let mut every = tokio::time::interval(BACKLOG_EVERY);
    loop {
        every.tick().await;
        match deliveries::backlog(engine.app.db()).await {
            Ok(backlog) => {
                for endpoint_id in &shown {
                    if !backlog.iter().any(|(id, _)| id == endpoint_id) {
                        metrics::gauge!("ontab_webhook_backlog", "endpoint_id" => endpoint_id.to_string())
                            .set(0.0);
                    }
                }
                for (endpoint_id, pending) in &backlog {
                    metrics::gauge!("ontab_webhook_backlog", "endpoint_id" => endpoint_id.to_string())
                        .set(*pending as f64);
                }
                shown = backlog.into_iter().map(|(id, _)| id).collect();
            }
            Err(error) => tracing::debug!(%error, "could not read the webhook backlog"),
        }
    }
}
