//! The delivery engine, a background task of `ontab serve`. Every round:
//! fan new events out (per business, in its tenant's transaction) from the
//! endpoints' windows this server holds or may take (migrations/0031), and
//! read what it handed out; when something may have been left to the
//! claims, claim across tenants the rows that may go now and read them
//! (one statement per business). Each subject's run is sent by a task of
//! its own, up to `concurrency` sending at once. A round starts when the
//! sequencer notifies (`ontab_events`), when a task finishes, or every
//! `poll` otherwise; never sooner than `ROUND_GATHER` after the last.
//!
//! The common case writes no delivery row: an event handed out of a window
//! is sent from memory, and its 2xx is recorded as the attempt alone, with
//! the endpoint's settled cursor moved below the oldest event still held
//! (`window.rs` keeps what this server holds). New events of
//! a subject being sent queue behind its task. A failure turns the event,
//! and what its subject had queued, into rows, which go on as before:
//! a subject's rows go as runs (migrations/0024), the recorder leasing each
//! delivered subject's next run in the transaction that records the last
//! (0010), up to `SUBJECT_RUN` events per task.
//!
//! All state that must survive is in PostgreSQL: a server killed at any
//! moment leaves its windows' unsettled events to their next holder, which
//! starts again from the settled cursor, and its leased rows to the claims
//! once their leases expire; both are sent again with the same webhook-id.
//! Per-(endpoint, subject) order, and one attempt at a time per delivery
//! across servers, are the windows' and the claims' (the window lease,
//! `ontab_claim_webhook_deliveries`, `ontab_webhook_attempted_batch`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::WebhookSettings;
use super::guard::GuardedResolver;
use super::recorder::{Recorder, WindowWork};
use super::window::{Busy, EndpointWindow, Live, Windows};
use crate::app::bounded_cache::BoundedCache;
use crate::app::{Actor, App, AppError};
use crate::db::deliveries::{self, Attempted, Job, Spill, ToRecord, WindowAttempt};
use crate::domain::webhook::{EndpointUrl, is_public, signature_header};

/// How many subjects handed out in memory may wait for or hold a slot,
/// per slot. Only as many as slots were free (the rule for leasing rows
/// at fan-out, 0025) left 6 % of the events of the uncontended benchmark
/// at 64 clients to rows: a round often brings more new subjects than
/// the sends under way have freed slots, and each of those rows cost a
/// claim and a recording of its own. Twice the slots did until rounds
/// were 30 ms apart ([`ROUND_GATHER`]): a round then brings about 90 new
/// subjects at 64 clients uncontended, and 23 % of the events became rows
/// again; four times the slots left none
/// (bench/results/20261205T1825Z-rows-cap-and-claims.md).
const HANDED_PER_SLOT: usize = 4;
/// Events fanned out per endpoint per round.
const FAN_OUT_BATCH: i32 = 1000;
/// Businesses fanned out per round.
const FAN_OUT_BUSINESSES: i32 = 500;
/// Deliveries one task sends for one subject before it gives its slot back,
/// at the end of the run that reaches it (others' subjects are claimed by
/// the rounds meanwhile: the slots are shared, so this only bounds how long
/// one task runs).
const SUBJECT_RUN: usize = 200;
/// The least time between two rounds. Each fan-out is a transaction with
/// fixed costs (the endpoints' rows, the run of new sequences, reading
/// what it hands out), so fewer, larger rounds cost PostgreSQL less per
/// event: 15 ms against 5 took the uncontended benchmark with one endpoint
/// at 64 clients from 0.82x to 0.87x of none, for about 10 ms more lag
/// (bench/results/20261205T160017Z-pairs.md). While a round leased at
/// most as many new subjects as slots were free, 20 ms capped them and
/// lag grew to 1.3 s (bench/results/20261204T104227Z); a round now hands
/// out up to several times the slots ([`HANDED_PER_SLOT`]).
///
/// 30 ms against 15, on the hot product at 64 clients: 30 fan-outs a
/// second instead of 50; the fan-out, the read of what it handed out and
/// the search for due businesses 11 µs per purchase instead of 19 in
/// PostgreSQL (bench/results/20261205T173025Z against 20261205T174012Z,
/// the range read in between), for about 10 ms more lag (p99 62 → 75–82
/// ms, 20261205T173728Z-pairs.md). In pairs against 15 ms (with two
/// subjects per slot, which left no rows at that pace): 0.90x against
/// 0.87x uncontended and 0.90x against 0.91x on the hot product, at 64
/// clients (20261205T181136Z-pairs.md, 20261205T181632Z-pairs.md).
const ROUND_GATHER: Duration = Duration::from_millis(30);
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
    /// What this server holds of endpoints' windows (migrations/0031).
    windows: Arc<Windows>,
    /// Tasks sending runs handed out in memory, sending or waiting for a
    /// slot: a fan-out hands out new subjects while there are fewer than
    /// four times the slots ([`HANDED_PER_SLOT`]).
    handed: Arc<AtomicUsize>,
    /// Tasks sending runs of claimed rows, sending or waiting for a slot:
    /// a round claims while there are fewer than the slots ([`round`]).
    claimed: Arc<AtomicUsize>,
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
    let windows = Arc::new(Windows::new());
    let engine = Arc::new(Engine {
        slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        recorder: Recorder::start(app.clone(), lease, lease_ms, schedule_ms, windows.clone()),
        windows,
        handed: Arc::new(AtomicUsize::new(0)),
        claimed: Arc::new(AtomicUsize::new(0)),
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

/// Counts a task while it lives.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
    // Rows are claimed into free slots, and, while fewer runs of rows
    // than slots are under way, up to that many even with none free:
    // their tasks then wait for a slot in turn (the semaphore is first
    // come, first served) with the runs handed out in memory. Claiming
    // only into free slots starved the rows whenever runs in memory kept
    // every slot busy: with 23 % of the events of the uncontended
    // benchmark at 64 clients left to rows (the fan-out's cap on subjects
    // in memory reached), those waited up to 11 s
    // (bench/results/20261205T180055Z-pairs.md); a quarter of the slots
    // brought the p99 to 1.1 s, as many as the slots to 134 ms.
    let free = engine.slots.available_permits();
    let share = engine
        .settings
        .concurrency
        .max(1)
        .saturating_sub(engine.claimed.load(Ordering::Acquire));
    let room = free.max(share);
    if room == 0 {
        // Whatever is due waits for a slot; the task freeing it wakes us.
        engine.claim_due.store(true, Ordering::Release);
        return Ok(());
    }
    let limit = i32::try_from(room).unwrap_or(i32::MAX);
    let claimed =
        match deliveries::claim(engine.app.db(), engine.lease, engine.lease_ms, limit).await {
            Ok(claimed) => claimed,
            Err(error) => {
                engine.claim_due.store(true, Ordering::Release);
                return Err(error.into());
            }
        };
    if claimed.len() >= room {
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
        let began = Instant::now();
        let jobs = deliveries::load(&tx, kind, &delivery_ids, engine.lease).await?;
        tx.commit().await?;
        start(engine, business_id, jobs, began, None);
    }
    Ok(())
}

/// Fans out every business with events not yet handed to its endpoints
/// whose window this server may hold (migrations/0031): new subjects with
/// nothing pending, as far as slots are free, are handed out in memory
/// and sent by a task each; rows leased for subjects busy here go to their
/// tasks. Answers whether some row created was left for a claim.
async fn fan_out(engine: &Arc<Engine>) -> Result<bool, AppError> {
    let mut left = false;
    let actor = Actor::System.recorded();
    for business_id in
        deliveries::fan_out_due(engine.app.db(), FAN_OUT_BUSINESSES, engine.lease).await?
    {
        let handed_max = (engine.settings.concurrency.max(1) * HANDED_PER_SLOT)
            .saturating_sub(engine.handed.load(Ordering::Acquire));
        let free = i32::try_from(handed_max).unwrap_or(i32::MAX);
        let windows = engine.windows.of(business_id);
        let mut held = windows.lock().await;
        let began = Instant::now();
        let (tx, _) = engine.app.db().begin(business_id, &[], &actor).await?;
        let kind = deliveries::bookkeeping(&tx).await?;
        let fanned = deliveries::fan_out(
            &tx,
            FAN_OUT_BATCH,
            engine.lease,
            engine.lease_ms,
            free,
            &held.held(),
        )
        .await?;
        let handed: Vec<(Uuid, Uuid)> = fanned
            .iter()
            .filter(|f| f.held)
            .flat_map(|f| f.handed.iter().map(|event| (f.endpoint_id, *event)))
            .collect();
        let leased: Vec<Uuid> = fanned.iter().flat_map(|f| f.leased.clone()).collect();
        let handed =
            deliveries::load_handed(&tx, kind, &handed, handed_range(&fanned, &held.endpoints))
                .await?;
        let leased = deliveries::load(&tx, kind, &leased, engine.lease).await?;
        if let Err(error) = tx.commit().await {
            // Whether it committed is unknown: what this server holds of
            // the business's windows may no longer be what PostgreSQL
            // holds, so it lets them go; the next fan-out takes them over
            // from their settled cursors.
            held.drop_all();
            return Err(error.into());
        }
        for f in &fanned {
            if !f.held {
                held.drop_window(f.endpoint_id);
                continue;
            }
            if f.taken {
                held.drop_window(f.endpoint_id);
            }
            let window = held
                .endpoints
                .entry(f.endpoint_id)
                .or_insert_with(|| engine.windows.open(f.fanned, began));
            window.fanned = f.fanned;
            window.live.renewed(began);
            metrics::counter!("ontab_webhook_fanned_out_total", "as" => "memory")
                .increment(u64::try_from(f.handed.len()).unwrap_or(0));
            metrics::counter!("ontab_webhook_fanned_out_total", "as" => "row")
                .increment(u64::try_from(f.created).unwrap_or(0));
            left |= f.created > i64::try_from(f.leased.len()).unwrap_or(i64::MAX);
        }
        for job in leased {
            let key = (job.endpoint_id, job.event.subject_id);
            match held.busy.get_mut(&key) {
                Some(busy) => {
                    busy.handoff_at.get_or_insert(began);
                    busy.handoff.push(job);
                }
                // Not busy any more (it cannot be: the lock is held): sent
                // as a run of its own.
                None => start(engine, business_id, vec![job], began, None),
            }
        }
        let mut fresh: Vec<Job> = Vec::new();
        for job in handed {
            let Some(window) = held.endpoints.get_mut(&job.endpoint_id) else {
                continue;
            };
            window.outstanding.insert(job.event.sequence);
            if let Some(busy) = held.busy.get_mut(&(job.endpoint_id, job.event.subject_id)) {
                busy.queue.push(job);
                continue;
            }
            fresh.push(job);
        }
        for run in runs_by_subject(fresh) {
            let Some(first) = run.first() else {
                continue;
            };
            let key = (first.endpoint_id, first.event.subject_id);
            let Some(window) = held.endpoints.get(&key.0) else {
                continue;
            };
            let live = window.live.clone();
            held.busy.insert(
                key,
                Busy {
                    epoch: live.epoch,
                    ..Busy::default()
                },
            );
            start(engine, business_id, run, began, Some(live));
        }
    }
    Ok(left)
}

/// The sequences the events just handed out lie in, when every window
/// that handed some went on from where this server left it (`windows`,
/// as they were before the fan-out: it goes on from each one's `fanned`).
/// A window taken over starts from its settled cursor, which only
/// PostgreSQL knows.
fn handed_range(
    fanned: &[deliveries::Fanned],
    windows: &HashMap<Uuid, EndpointWindow>,
) -> Option<deliveries::HandedRange> {
    let mut range: Option<deliveries::HandedRange> = None;
    for f in fanned.iter().filter(|f| f.held && !f.handed.is_empty()) {
        let after = (!f.taken)
            .then(|| windows.get(&f.endpoint_id))
            .flatten()?
            .fanned;
        range = Some(match range {
            None => deliveries::HandedRange {
                after,
                through: f.fanned,
            },
            Some(range) => deliveries::HandedRange {
                after: range.after.min(after),
                through: range.through.max(f.fanned),
            },
        });
    }
    range
}

/// Sends each subject's run in a task of its own, holding a slot while it
/// sends; a task goes on with the subject's next run (rows the recorder
/// leased, or rows the fan-out leased while it was sending from memory)
/// once it has a slot again. `window` is the window the run was handed
/// out of, for a run sent from memory; rows have none.
/// `jobs` come in sequence order (`deliveries::load`), so each run keeps it.
fn start(
    engine: &Arc<Engine>,
    business_id: Uuid,
    jobs: Vec<Job>,
    leased_at: Instant,
    window: Option<Arc<Live>>,
) {
    for run in runs_by_subject(jobs) {
        // No more subjects were leased than slots were free, but a task
        // going on with its next run may have taken one since: then this
        // run waits for a slot rather than for its lease to expire (which
        // held some deliveries 30 s, bench/results/20261204T102637Z).
        let permit = engine.slots.clone().try_acquire_owned().ok();
        let engine = engine.clone();
        let window = window.clone();
        let counted = Counted::new(if window.is_some() {
            engine.handed.clone()
        } else {
            engine.claimed.clone()
        });
        tokio::spawn(async move {
            let _counted = counted;
            let mut run = run;
            let mut permit = permit;
            let mut leased_at = leased_at;
            let mut window = window;
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
                let Some(live) = window.clone() else {
                    let ended =
                        send_run(&engine, business_id, run, leased_at, slot, &mut sent).await;
                    subject_done = ended.subject_done;
                    run = ended.next;
                    leased_at = ended.recorded_at;
                    continue;
                };
                let Some(key) = run
                    .first()
                    .map(|job| (job.endpoint_id, job.event.subject_id))
                else {
                    break;
                };
                if !send_handed(&engine, business_id, run, &live, slot, &mut sent).await {
                    subject_done = false;
                    break;
                }
                // All delivered: next, what was queued for the subject
                // meanwhile; then, once that is done, rows leased for it.
                let windows = engine.windows.of(business_id);
                let mut held = windows.lock().await;
                run = match held.take_queue(key, live.epoch) {
                    Some(queued) => queued,
                    None => {
                        let busy = held.release(key, live.epoch).unwrap_or_default();
                        window = None;
                        leased_at = busy.handoff_at.unwrap_or_else(Instant::now);
                        busy.handoff
                    }
                };
                subject_done = run.is_empty();
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

/// `jobs` as one run per (endpoint, subject), each in the order given,
/// the runs in the order of their first job.
fn runs_by_subject(jobs: Vec<Job>) -> Vec<Vec<Job>> {
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
    runs
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
        // Only while the lease leaves room for the request's whole
        // timeout: a claimed run was leased a moment ago, but rows the
        // fan-out leased for a subject busy here waited for its run
        // sent from memory.
        if leased_at.elapsed() > engine.run_budget {
            break;
        }
        let Some(delivery_id) = job.delivery_id else {
            // Not a row: runs of rows are read by `deliveries::load`.
            continue;
        };
        let attempted = send(engine, &job).await;
        *sent += 1;
        let delivered = attempted.delivered();
        to_record.push(ToRecord {
            delivery_id,
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
    if to_record.is_empty() {
        // Nothing went: the leases expire, and the claims take the rows.
        return RunEnd {
            subject_done: false,
            next: Vec::new(),
            recorded_at: Instant::now(),
        };
    }
    let go_on = all_delivered && *sent < SUBJECT_RUN;
    // Only the run's last attempt asks for the next run.
    if let Some(last) = to_record.last_mut() {
        last.continue_subject = go_on;
    }
    let recorded = match engine
        .recorder
        .record(business_id, to_record, WindowWork::default())
        .await
    {
        Ok(recorded) => recorded,
        Err(error) => {
            for job in &jobs {
                tracing::warn!(%error, delivery_id = ?job.delivery_id, "webhook attempt could not be recorded");
            }
            return RunEnd {
                subject_done: false,
                next: Vec::new(),
                recorded_at: Instant::now(),
            };
        }
    };
    let delivered = observe(&jobs, &recorded.outcomes);
    RunEnd {
        subject_done: go_on && delivered == jobs.len(),
        next: recorded.next,
        recorded_at: Instant::now(),
    }
}

/// Counts the recorded outcomes of `jobs` (in order) in the metrics and
/// logs what needs an operator; answers how many were delivered.
fn observe(jobs: &[Job], outcomes: &[Option<String>]) -> usize {
    let mut delivered = 0;
    for (job, outcome) in jobs.iter().zip(outcomes) {
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
    delivered
}

/// Sends a run handed out in memory from `window` (migrations/0031) in
/// order, one event after another; answers whether all of it was
/// delivered. Stops at the first event not delivered, and before any
/// event once the window is not this server's any more or its lease might
/// not outlast the request.
///
/// All delivered, the run is recorded in the background (a 2xx is its
/// attempt alone, and moves the settled cursor) while the subject's task
/// goes on: the subject's next events may go once these were delivered,
/// whether or not that is written yet.
///
/// Otherwise the first failure becomes the event's row, with that attempt
/// counted, and what the run did not send, then what was queued for the
/// subject meanwhile, become rows behind it: the claims and the retry
/// schedule carry the subject on, in order. The subject stays busy (its
/// new events queued here) until those rows are written, and is then let
/// go with any rows leased for it. (Should the window have been lost,
/// what was not recorded is left to its next holder, who sends it again
/// from the settled cursor.)
async fn send_handed(
    engine: &Arc<Engine>,
    business_id: Uuid,
    run: Vec<Job>,
    window: &Arc<Live>,
    slot: OwnedSemaphorePermit,
    sent: &mut usize,
) -> bool {
    let Some(key) = run
        .first()
        .map(|job| (job.endpoint_id, job.event.subject_id))
    else {
        return true;
    };
    let mut work = WindowWork::new(window.epoch);
    let mut sent_jobs: Vec<Job> = Vec::with_capacity(run.len());
    let mut rest: Vec<Job> = Vec::new();
    let mut all_delivered = true;
    let mut jobs = run.into_iter();
    while let Some(job) = jobs.next() {
        if !window.fresh(engine.run_budget) {
            all_delivered = false;
            rest.push(job);
            rest.extend(jobs.by_ref());
            break;
        }
        let attempted = send(engine, &job).await;
        *sent += 1;
        let delivered = attempted.delivered();
        work.attempts.push((
            WindowAttempt {
                endpoint_id: job.endpoint_id,
                event_id: job.event.id,
                row_id: Uuid::new_v4(),
                // Time-ordered: the attempts' primary key grows at its end.
                attempt_id: Uuid::now_v7(),
                attempted,
            },
            job.event.sequence,
        ));
        sent_jobs.push(job);
        if !delivered {
            all_delivered = false;
            rest.extend(jobs.by_ref());
            break;
        }
    }
    drop(slot);
    if engine.claim_due.load(Ordering::Acquire) {
        engine.wake.notify_one();
    }
    if all_delivered {
        let engine = engine.clone();
        let window = window.clone();
        tokio::spawn(async move {
            let outcomes = record_handed(&engine, business_id, work, &window).await;
            observe(&sent_jobs, &outcomes);
        });
        return true;
    }
    work.spill = spill(&rest);
    let outcomes = record_handed(engine, business_id, work, window).await;
    observe(&sent_jobs, &outcomes);
    // Events queued for the subject before its failure was written go
    // behind it as rows too; once nothing more came, it is let go.
    let windows = engine.windows.of(business_id);
    let leased = loop {
        let mut held = windows.lock().await;
        let queued = match held.take_queue(key, window.epoch) {
            Some(queued) => queued,
            None => break held.release(key, window.epoch).map(|busy| busy.handoff),
        };
        drop(held);
        let mut work = WindowWork::new(window.epoch);
        work.spill = spill(&queued);
        record_handed(engine, business_id, work, window).await;
    };
    // Rows leased for the subject are behind its failure: let go, they
    // wait for it in the claims' order.
    let release: Vec<Uuid> = leased
        .unwrap_or_default()
        .iter()
        .filter_map(|job| job.delivery_id)
        .collect();
    if !release.is_empty() {
        let mut work = WindowWork::new(window.epoch);
        work.release = release;
        if let Err(error) = engine.recorder.record(business_id, Vec::new(), work).await {
            tracing::debug!(%error, "could not let leased deliveries go; their leases will expire");
        }
    }
    false
}

/// Events handed out and not sent, as rows to write (each with the id it
/// will have, and its sequence).
fn spill(jobs: &[Job]) -> Vec<(Spill, i64)> {
    jobs.iter()
        .map(|job| {
            (
                Spill {
                    endpoint_id: job.endpoint_id,
                    event_id: job.event.id,
                    row_id: Uuid::new_v4(),
                },
                job.event.sequence,
            )
        })
        .collect()
}

/// Records what a run sent from memory did, again after an error (the
/// recording writes nothing twice), until it is written or the window is
/// not this server's any more (then its next holder sends the events
/// again): until then they hold the endpoint's settled cursor.
async fn record_handed(
    engine: &Engine,
    business_id: Uuid,
    work: WindowWork,
    window: &Live,
) -> Vec<Option<String>> {
    let mut pause = Duration::from_millis(500);
    let mut work = work;
    loop {
        match engine
            .recorder
            .record(business_id, Vec::new(), work.clone())
            .await
        {
            Ok(recorded) => return recorded.outcomes,
            Err(error) => {
                work.rewrite = true;
                if !window.is_valid() {
                    return vec![None; work.attempts.len()];
                }
                tracing::warn!(%business_id, %error, retry_in = ?pause,
                    "webhook attempts sent from memory could not be recorded; recording them again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
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

    fn fanned(endpoint_id: Uuid, taken: bool, fanned: i64, handed: usize) -> deliveries::Fanned {
        deliveries::Fanned {
            endpoint_id,
            held: true,
            taken,
            fanned,
            handed: (0..handed).map(|_| Uuid::new_v4()).collect(),
            leased: Vec::new(),
            created: 0,
        }
    }

    #[test]
    fn handed_events_are_read_by_range_only_from_where_this_server_left_every_window() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let windows = Windows::new();
        let left_at = HashMap::from([
            (a, windows.open(10, Instant::now())),
            (b, windows.open(4, Instant::now())),
        ]);
        let range = handed_range(
            &[fanned(a, false, 15, 5), fanned(b, false, 12, 3)],
            &left_at,
        )
        .expect("both went on from where they were left");
        assert_eq!((range.after, range.through), (4, 15));
        // A window that handed nothing does not widen the range.
        let range = handed_range(
            &[fanned(a, false, 15, 5), fanned(b, false, 40, 0)],
            &left_at,
        )
        .expect("a went on");
        assert_eq!((range.after, range.through), (10, 15));
        // Taken over, or new here: where it started only PostgreSQL knows.
        assert!(handed_range(&[fanned(a, true, 15, 5)], &left_at).is_none());
        assert!(handed_range(&[fanned(Uuid::new_v4(), false, 15, 5)], &left_at).is_none());
        assert!(
            handed_range(&[fanned(a, false, 15, 5), fanned(b, true, 12, 3)], &left_at).is_none()
        );
        // Another server's window hands nothing out here.
        let mut other = fanned(b, false, 12, 0);
        other.held = false;
        assert!(handed_range(&[other], &left_at).is_none());
    }
}
