//! The delivery engine, a background task of `ontab serve`. Every round:
//! fan new events out into deliveries (per endpoint, in its tenant's
//! transaction), leasing in the same transaction those that head their
//! subject and reading their bodies (migrations/0016); when something may
//! have been left unleased, claim across tenants what may go now and read
//! those bodies (one statement per business). Each subject's leased run is
//! sent by a task of its own, up to `concurrency` sending at once. A round
//! starts when the sequencer notifies (`ontab_events`), when a task
//! finishes, or every `poll` otherwise; never sooner than `ROUND_GATHER`
//! after the last.
//!
//! A subject's deliveries go as runs (migrations/0024): the fan-out leases
//! with a new head the subject's next new deliveries, and a task sends its
//! run one event after another, stopping at the first not delivered. It
//! records the run's attempts through the [`Recorder`], which writes the
//! attempts that finished together in one transaction per business and,
//! in it, leases each delivered subject's next run and reads its bodies
//! (0010, 0024); the task goes on with it, up to `SUBJECT_RUN` events: a
//! subject with a backlog drains at the speed of its receiver rather than
//! one event per round or per flush, and PostgreSQL sees a few
//! transactions per batch of deliveries, not two per delivery.
//!
//! All state is in PostgreSQL (migrations/0006): a server killed at any
//! moment leaves at worst leased deliveries, attempted again once the lease
//! expires, with the same webhook-id. Per-(endpoint, subject) order, and
//! one attempt at a time per delivery across servers, are the claims'
//! (`ontab_claim_webhook_deliveries`, `ontab_webhook_attempted_batch`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::WebhookSettings;
use super::guard::GuardedResolver;
use super::recorder::Recorder;
use crate::app::bounded_cache::BoundedCache;
use crate::app::{Actor, App, AppError};
use crate::db::deliveries::{self, Attempted, Job, ToRecord};
use crate::domain::webhook::{EndpointUrl, is_public, signature_header};

/// Events fanned out per endpoint per round.
const FAN_OUT_BATCH: i32 = 1000;
/// Businesses fanned out per round.
const FAN_OUT_BUSINESSES: i32 = 500;
/// Deliveries one task sends for one subject before it gives its slot back,
/// at the end of the run that reaches it (others' subjects are claimed by
/// the rounds meanwhile: the slots are shared, so this only bounds how long
/// one task runs).
const SUBJECT_RUN: usize = 200;
/// The least time between two rounds. Not the recorder's 20 ms: a round
/// leases at most as many new subjects as slots are free, so at 20 ms the
/// rounds capped new subjects near the uncontended benchmark's rate at 64
/// clients, and its lag p99 grew to 1.3 s (129 ms at 5 ms,
/// bench/results/20261204T104227Z and 20261204T104632Z).
const ROUND_GATHER: Duration = Duration::from_millis(5);
/// How often the backlog gauge is refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(10);
/// Endpoint URLs kept parsed, however many endpoints there are.
const MAX_PARSED_URLS: usize = 10_000;

/// The engine's shared parts.
struct Engine {
    app: Arc<App>,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// This server's lease: what it claims, it alone may record.
    lease: Uuid,
    /// How long a lease lasts, in the unit the SQL functions take.
    lease_ms: i32,
    recorder: Recorder,
    /// How long after its run was leased a task may still start sending
    /// one of the run: half of what the lease leaves beyond a request's
    /// timeout, so the lease (taken when its transaction began, a little
    /// before the task got it) outlasts every request of the run.
    run_budget: Duration,
    wake: Notify,
    /// Whether the next round must look for deliveries to lease: something
    /// may have become leasable that no fan-out or recorder leased (a
    /// fan-out left some of what it created, the claim filled every free
    /// slot, a task ended on something other than its subject's last
    /// delivery, `poll` passed, so retries and expired leases came due).
    /// Otherwise a round only fans out: without this, every sequenced
    /// purchase cost a claim over the whole queue, endpoints or not
    /// (23 µs of PostgreSQL per purchase at 64 clients with no endpoint
    /// anywhere, bench/results/20261203T075730Z).
    claim_due: AtomicBool,
    slots: Arc<Semaphore>,
    /// Endpoint URLs parsed, at most [`MAX_PARSED_URLS`] ([`parsed_url`]).
    urls: BoundedCache<String, EndpointUrl>,
}

/// An endpoint's URL as parsed and checked, kept by its text (the key,
/// since an endpoint's URL may change; refusals are not kept, so a stored
/// text that fails is checked again each time). Parsing the URL again for
/// every request (url, idna) cost ~11k instructions per delivered event
/// (bench/results/20261204T1427Z-profile.md).
fn parsed_url(urls: &BoundedCache<String, EndpointUrl>, raw: &str) -> Result<EndpointUrl, String> {
    if let Some(url) = urls.get(raw) {
        return Ok(url);
    }
    let url = EndpointUrl::parse("url", raw).map_err(|error| error.message)?;
    urls.insert(raw.to_owned(), url.clone());
    Ok(url)
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
    let lease = Uuid::new_v4();
    let lease_ms = i32::try_from(settings.lease.as_millis()).unwrap_or(i32::MAX);
    let schedule_ms = settings
        .retry_schedule
        .iter()
        .map(|wait| i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
        .collect();
    let engine = Arc::new(Engine {
        slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        recorder: Recorder::start(app.clone(), lease, lease_ms, schedule_ms),
        run_budget: settings.lease.saturating_sub(settings.timeout) / 2,
        app,
        settings,
        client,
        lease,
        lease_ms,
        wake: Notify::new(),
        claim_due: AtomicBool::new(true),
        urls: BoundedCache::new(MAX_PARSED_URLS),
    });
    let _listener = AbortOnDrop(tokio::spawn(listen(engine.clone())));
    let _gauges = AbortOnDrop(tokio::spawn(backlog_gauge(engine.clone())));
    loop {
        if let Err(error) = round(&engine).await {
            tracing::warn!(%error, "webhook delivery round failed");
        }
        // Rounds are paced as the recorder's flushes are (recorder.rs,
        // GATHER): every finished task wakes the engine, and a round per
        // wake-up leased and read a few deliveries each time, paying for
        // planning its statements every time.
        tokio::time::sleep(ROUND_GATHER).await;
        if tokio::time::timeout(engine.settings.poll, engine.wake.notified())
            .await
            .is_err()
        {
            engine.claim_due.store(true, Ordering::Release);
        }
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
    if fan_out(engine).await? {
        engine.claim_due.store(true, Ordering::Release);
    }
    if !engine.claim_due.swap(false, Ordering::AcqRel) {
        return Ok(());
    }
    let free = engine.slots.available_permits();
    if free == 0 {
        // Whatever is due waits for a slot; the task freeing it wakes us.
        engine.claim_due.store(true, Ordering::Release);
        return Ok(());
    }
    let limit = i32::try_from(free).unwrap_or(i32::MAX);
    let claimed =
        match deliveries::claim(engine.app.db(), engine.lease, engine.lease_ms, limit).await {
            Ok(claimed) => claimed,
            Err(error) => {
                engine.claim_due.store(true, Ordering::Release);
                return Err(error.into());
            }
        };
    if claimed.len() >= free {
        engine.claim_due.store(true, Ordering::Release);
    }
    let mut by_business: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (business_id, delivery_id) in claimed {
        by_business
            .entry(business_id)
            .or_default()
            .push(delivery_id);
    }
    for (business_id, delivery_ids) in by_business {
        let actor = Actor::System.recorded();
        let (tx, _) = engine.app.db().begin(business_id, &[], &actor).await?;
        let kind = deliveries::bookkeeping(&tx).await?;
        let jobs = deliveries::load(&tx, kind, &delivery_ids, engine.lease).await?;
        tx.commit().await?;
        start(engine, business_id, jobs);
    }
    Ok(())
}

/// Fans out every business with events not yet handed to its endpoints,
/// and starts the new deliveries that head their subject, as far as slots
/// are free: leased by the fan-out and read in its transaction
/// (migrations/0016), they need no claim. Answers whether some delivery
/// created was left for a claim.
async fn fan_out(engine: &Arc<Engine>) -> Result<bool, AppError> {
    let mut left = false;
    let actor = Actor::System.recorded();
    for business_id in deliveries::fan_out_due(engine.app.db(), FAN_OUT_BUSINESSES).await? {
        let free = i32::try_from(engine.slots.available_permits()).unwrap_or(i32::MAX);
        let (tx, _) = engine.app.db().begin(business_id, &[], &actor).await?;
        let kind = deliveries::bookkeeping(&tx).await?;
        let fanned =
            deliveries::fan_out(&tx, FAN_OUT_BATCH, engine.lease, engine.lease_ms, free).await?;
        let jobs = deliveries::load(&tx, kind, &fanned.leased, engine.lease).await?;
        tx.commit().await?;
        left |= fanned.created > i64::try_from(fanned.leased.len()).unwrap_or(i64::MAX);
        start(engine, business_id, jobs);
    }
    Ok(left)
}

/// Sends each subject's leased run in a task of its own, holding a slot
/// while it sends; a task goes on with the subject's next run, which the
/// recorder leases, once it has a slot again.
/// `jobs` come in sequence order (`deliveries::load`), so each run keeps it.
fn start(engine: &Arc<Engine>, business_id: Uuid, jobs: Vec<Job>) {
    let mut runs: Vec<Vec<Job>> = Vec::new();
    let mut run_of: HashMap<(Uuid, Uuid), usize> = HashMap::new();
    for job in jobs {
        let at = *run_of
            .entry((job.endpoint_id, job.event.subject_id))
            .or_insert_with(|| {
                runs.push(Vec::new());
                runs.len() - 1
            });
        runs[at].push(job);
    }
    for run in runs {
        // No more subjects were leased than slots were free, but a task
        // going on with its next run may have taken one since: then this
        // run waits for a slot rather than for its lease to expire (which
        // held some deliveries 30 s, bench/results/20261204T102637Z).
        let permit = engine.slots.clone().try_acquire_owned().ok();
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut run = run;
            let mut permit = permit;
            let mut leased_at = Instant::now();
            let mut sent = 0;
            let mut subject_done = false;
            while !run.is_empty() {
                // A slot is held while the run is sent, not while it is
                // recorded: with the slot held through the recorder's
                // gather, 64 slots capped deliveries near 1,600/s and the
                // uncontended benchmark at 64 clients lagged seconds
                // (bench/results/20261204T101222Z).
                let slot = match permit.take() {
                    Some(slot) => slot,
                    None => match engine.slots.clone().acquire_owned().await {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                };
                let ended = send_run(&engine, business_id, run, leased_at, slot, &mut sent).await;
                subject_done = ended.subject_done;
                run = ended.next;
                leased_at = ended.recorded_at;
            }
            // A subject delivered to its end leaves nothing for a claim
            // (its recorder would have leased a next run); anything else (a
            // retry, a lost lease, a task ended at SUBJECT_RUN, a subject
            // given up on) may have left its next one to the claim.
            if !subject_done {
                engine.claim_due.store(true, Ordering::Release);
            }
            engine.wake.notify_one();
        });
    }
}

/// How a run ended, for the task that sent it.
struct RunEnd {
    /// Everything sent was recorded as delivered, and the task asked for
    /// the subject's next run: an empty `next` means the subject is done.
    subject_done: bool,
    /// The subject's next run, leased to this server.
    next: Vec<Job>,
    /// When the recording (and that lease) came back.
    recorded_at: Instant,
}

/// Sends a leased run in order, one event after another, and records what
/// was sent in one go. Stops at the first event not delivered (the next
/// waits for it: per-subject order), and before an event that could
/// outlast the run's lease. When everything sent was delivered and the
/// task has sent fewer than `SUBJECT_RUN`, the recorder leases the
/// subject's next run (what this one did not send included: a lease of
/// this server's own counts as free).
async fn send_run(
    engine: &Engine,
    business_id: Uuid,
    run: Vec<Job>,
    leased_at: Instant,
    slot: OwnedSemaphorePermit,
    sent: &mut usize,
) -> RunEnd {
    let mut jobs: Vec<Job> = Vec::with_capacity(run.len());
    let mut to_record: Vec<ToRecord> = Vec::with_capacity(run.len());
    let mut all_delivered = true;
    for job in run {
        // The first always goes, as a single delivery always did; a later
        // one only while the lease leaves room for its whole timeout.
        if !jobs.is_empty() && leased_at.elapsed() > engine.run_budget {
            break;
        }
        let attempted = send(engine, &job).await;
        *sent += 1;
        let delivered = attempted
            .status_code
            .is_some_and(|status| (200..300).contains(&status));
        to_record.push(ToRecord {
            delivery_id: job.delivery_id,
            attempted,
            continue_subject: false,
        });
        jobs.push(job);
        if !delivered {
            all_delivered = false;
            break;
        }
    }
    drop(slot);
    if engine.claim_due.load(Ordering::Acquire) {
        // Something waits for a free slot.
        engine.wake.notify_one();
    }
    let go_on = all_delivered && *sent < SUBJECT_RUN;
    // Only the run's last attempt asks for the next run.
    if let Some(last) = to_record.last_mut() {
        last.continue_subject = go_on;
    }
    let recorded = match engine.recorder.record(business_id, to_record).await {
        Ok(recorded) => recorded,
        Err(error) => {
            for job in &jobs {
                tracing::warn!(%error, delivery_id = %job.delivery_id, "webhook attempt could not be recorded");
            }
            return RunEnd {
                subject_done: false,
                next: Vec::new(),
                recorded_at: Instant::now(),
            };
        }
    };
    let mut delivered = 0;
    for (job, outcome) in jobs.iter().zip(&recorded.outcomes) {
        let label = outcome.as_deref().unwrap_or("lease_lost");
        metrics::counter!("ontab_webhook_attempts_total", "outcome" => label.to_owned())
            .increment(1);
        match label {
            "delivered" => {
                delivered += 1;
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
    }
    RunEnd {
        subject_done: go_on && delivered == jobs.len(),
        next: recorded.next,
        recorded_at: Instant::now(),
    }
}

/// POSTs the event, signed, and says what happened. Never follows a
/// redirect; never reaches a non-public address unless allowed.
async fn send(engine: &Engine, job: &Job) -> Attempted {
    let attempted_at = chrono::Utc::now();
    let started = Instant::now();
    let answer = post(engine, job).await;
    // The attempt lasted until the answer's status: what the receiver sends
    // after it is only read so the connection can be kept (`drain`).
    let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let (status_code, error) = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            drain(response).await;
            match status {
                300..=399 => (
                    Some(i32::from(status)),
                    Some("redirects are not followed".to_owned()),
                ),
                _ => (Some(i32::from(status)), None),
            }
        }
        Err(error) => (None, Some(error)),
    };
    Attempted {
        status_code,
        error,
        duration_ms,
        attempted_at,
    }
}

/// The most of an answer's body read so that its connection can be reused.
const DRAIN_LIMIT: usize = 64 * 1024;
/// The longest a body is read for, on top of the request's own timeout.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Reads the answer's body to its end, up to `DRAIN_LIMIT` bytes and for
/// at most `DRAIN_TIME`, and drops it. A response dropped unread lets its
/// connection back into the pool only when the whole body had already
/// arrived with the headers; otherwise the connection is closed, and with
/// a receiver whose answers carry a few kilobytes every delivery paid a
/// new connection (and, over https, a TLS handshake). What the body says
/// is not kept: the status decides the outcome. A larger, slower or broken
/// body costs only the connection, as before.
async fn drain(mut response: reqwest::Response) {
    let read = async {
        let mut read = 0usize;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > DRAIN_LIMIT {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

async fn post(engine: &Engine, job: &Job) -> Result<reqwest::Response, String> {
    let url = parsed_url(&engine.urls, &job.url)?;
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
    engine
        .client
        .post(url.into_url())
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(describe)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_are_parsed_once_by_text_and_kept_bounded() {
        let urls = BoundedCache::new(MAX_PARSED_URLS);
        let url = parsed_url(&urls, "https://example.com/hook").expect("valid");
        assert_eq!(url.as_str(), "https://example.com/hook");
        assert_eq!(urls.get("https://example.com/hook"), Some(url.clone()));
        assert_eq!(parsed_url(&urls, "https://example.com/hook"), Ok(url));
        assert_eq!(
            parsed_url(&urls, "https://example.com/other").map(EndpointUrl::into_url),
            Ok(url::Url::parse("https://example.com/other").expect("valid"))
        );
        // Refused, and not kept: the stored text is checked again each time.
        assert!(parsed_url(&urls, "ftp://example.com/hook").is_err());
        assert!(parsed_url(&urls, "https://user:secret@example.com/").is_err());
        assert_eq!(urls.get("ftp://example.com/hook"), None);
        for n in 0..=MAX_PARSED_URLS {
            parsed_url(&urls, &format!("https://example.com/{n}")).expect("valid");
        }
        let kept = urls.len();
        assert!((1..=MAX_PARSED_URLS).contains(&kept), "{kept} URLs kept");
    }
}
