//! Records delivery attempts a batch at a time, as group commit does for
//! purchases: every task that finished an attempt queues it here and waits;
//! attempts that finish together are written together, one transaction per
//! business (migrations/0010), which in the same transaction leases each
//! delivered subject's next run and reads its bodies. A flush starts
//! `GATHER` after one of `FLUSHES` is free and something is queued, with
//! whatever is queued by then: a lone run waits those few milliseconds,
//! and under load each flush carries the attempts of that window rather
//! than the handful that finished during the last flush.
//!
//! Each task sends its own subject's run (migrations/0024) one delivery
//! after another, queues the run's attempts here together, and waits for
//! them to be recorded (and its next run leased) before it sends more:
//! per-subject order and the lease rules are the database's. What a batch
//! shares is the transaction: tenant set-up, one statement for all the attempts,
//! one for all the bodies, one commit (asynchronous, see
//! `deliveries::bookkeeping`). A flush that fails is written again after
//! a pause (`RETRY_PAUSES`); one that still fails answers every attempt of
//! its business with the error, and their leases then expire and the
//! deliveries go again, with the same webhook-id.
//!
//! Runs sent from an endpoint's window (migrations/0031) are recorded in the
//! same flush by `ontab_webhook_attempted_window`: their attempts, the rows
//! of what failed or was not sent, and, per endpoint, how far its settled
//! cursor may move, which the flush works out under the business's window
//! lock (below the oldest event still held that this flush does not
//! record). A run whose window is not this server's any more, or is
//! another epoch of it, is not written.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::delivery::AbortOnDrop;
use super::window::Windows;
use crate::app::{Actor, App, AppError};
use crate::db::deliveries::{
    self, Job, Spill, ToRecord, WindowAttempt, WindowRecorded, WindowRecording,
};

/// Attempts a flush takes at most (across businesses; a run is never
/// split, so one may carry a run more).
const MAX_BATCH: usize = 256;
/// Flushes under way at once. Each subject's worker waits for its flush
/// before it sends its next run, so this bounds a busy subject's pace:
/// with 2, before runs, hot-product at 64 clients delivered ~450/s and
/// lagged 18 s; with 4, it kept up (docs/benchmarks.md, "Attempts recorded
/// in batches").
const FLUSHES: usize = 4;
/// How long a flush gathers before it writes. Most of a flush's cost is
/// per statement, not per attempt (planning its statements for the rows at
/// hand, `deliveries::bookkeeping`, the tenant's transaction): flushing as
/// soon as a slot was free wrote ~5 attempts a flush at 1,300 deliveries/s
/// and cost PostgreSQL 365 µs per purchase; gathering 5 ms wrote ~26 and
/// cost 165 µs (docs/benchmarks.md, "Gathering"). While a subject sent one
/// delivery per flush, a longer gather slowed its backlog one step per
/// flush (10 ms split the rows, 20261204T0026Z-compare.md); a subject now
/// sends its whole run per flush (migrations/0024), so the gather is 20
/// ms: PostgreSQL CPU per purchase with one endpoint fell by a fifth to a
/// third at 16 clients (20261204T1012Z-compare-runs-gather20.md, with the
/// engine's rounds 20 ms apart too, since put back to 5), for about 15 ms
/// more lag.
const GATHER: Duration = Duration::from_millis(20);
/// The pauses before a failed flush is written again. Given up, its
/// attempts are sent again once their leases expire (timeout + margin, 30 s
/// by default): late and twice, for what is most often a moment's trouble
/// (a pool wait past its limit, a connection cut). Writing again is safe:
/// a flush records only deliveries still pending under this server's
/// lease, and clears the lease of what it records, so a flush whose COMMIT
/// did go through records nothing twice. The pauses add up to far less
/// than a lease.
const RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(100), Duration::from_secs(1)];

/// What a run sent from an endpoint's window asks to record
/// (migrations/0031): its attempts and the events it did not send, each
/// with its sequence, and rows it lets go. All of one endpoint's window,
/// the one of `epoch`: should the server hold another window of it by
/// the time this is written, none of it is (its events were handed out
/// again).
#[derive(Debug, Clone, Default)]
pub struct WindowWork {
    pub epoch: u64,
    /// Written before, maybe: an error hid whether it committed.
    pub rewrite: bool,
    pub attempts: Vec<(WindowAttempt, i64)>,
    pub spill: Vec<(Spill, i64)>,
    pub release: Vec<Uuid>,
}

impl WindowWork {
    pub fn new(epoch: u64) -> Self {
        Self {
            epoch,
            ..Self::default()
        }
    }

    fn endpoint_id(&self) -> Option<Uuid> {
        self.attempts
            .first()
            .map(|(attempt, _)| attempt.endpoint_id)
            .or_else(|| self.spill.first().map(|(spill, _)| spill.endpoint_id))
    }

    fn sequences(&self) -> impl Iterator<Item = i64> + '_ {
        self.attempts
            .iter()
            .map(|(_, sequence)| *sequence)
            .chain(self.spill.iter().map(|(_, sequence)| *sequence))
    }
}

/// What recording a run's attempts came to.
#[derive(Debug)]
pub struct Recorded {
    /// Per attempt, in the order given (the rows', or the window's):
    /// `delivered`, `retrying`, `gave_up`, `disabled`; `None` when the
    /// lease or the window was lost (another server holds it now).
    pub outcomes: Vec<Option<String>>,
    /// The subject's next run, leased to this server, in sequence order,
    /// when the caller asked to go on and its attempt was delivered.
    pub next: Vec<Job>,
}

struct Queued {
    business_id: Uuid,
    attempts: Vec<ToRecord>,
    window: WindowWork,
    reply: oneshot::Sender<Result<Recorded, String>>,
}

/// The lease and retry settings every flush writes with.
struct Settings {
    app: Arc<App>,
    windows: Arc<Windows>,
    lease: Uuid,
    lease_ms: i32,
    schedule_ms: Vec<i64>,
}

/// The queue of attempts to record; the flushing task ends with it.
pub struct Recorder {
    queue: mpsc::UnboundedSender<Queued>,
    _flusher: AbortOnDrop,
}

impl Recorder {
    pub fn start(
        app: Arc<App>,
        lease: Uuid,
        lease_ms: i32,
        schedule_ms: Vec<i64>,
        windows: Arc<Windows>,
    ) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        let settings = Arc::new(Settings {
            app,
            windows,
            lease,
            lease_ms,
            schedule_ms,
        });
        Self {
            queue,
            _flusher: AbortOnDrop(tokio::spawn(flush_all(settings, queued))),
        }
    }

    /// Records a run's attempts (one subject's, in the order sent): of
    /// rows, or sent from a window; answers once their batch committed.
    pub async fn record(
        &self,
        business_id: Uuid,
        attempts: Vec<ToRecord>,
        window: WindowWork,
    ) -> Result<Recorded, String> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued {
                business_id,
                attempts,
                window,
                reply,
            })
            .map_err(|_| "the attempt recorder has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the attempt recorder dropped the attempt".to_owned())?
    }
}

async fn flush_all(settings: Arc<Settings>, mut queued: mpsc::UnboundedReceiver<Queued>) {
    let slots = Arc::new(Semaphore::new(FLUSHES));
    while let Some(first) = queued.recv().await {
        // Waiting for a slot is when the batch grows.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        tokio::time::sleep(GATHER).await;
        let mut attempts = first.attempts.len() + first.window.attempts.len();
        let mut batch = vec![first];
        while attempts < MAX_BATCH {
            match queued.try_recv() {
                Ok(next) => {
                    attempts += next.attempts.len() + next.window.attempts.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let settings = settings.clone();
        tokio::spawn(async move {
            let mut by_business: HashMap<Uuid, Vec<Queued>> = HashMap::new();
            for queued in batch {
                by_business
                    .entry(queued.business_id)
                    .or_default()
                    .push(queued);
            }
            join_all(
                by_business
                    .into_iter()
                    .map(|(business_id, queued)| flush(&settings, business_id, queued)),
            )
            .await;
            drop(slot);
        });
    }
}

async fn flush(settings: &Settings, business_id: Uuid, queued: Vec<Queued>) {
    let attempts: Vec<ToRecord> = queued
        .iter()
        .flat_map(|q| q.attempts.iter().cloned())
        .collect();
    let (recording, current) = window_recording(settings, business_id, &queued).await;
    metrics::histogram!("ontab_webhook_record_batch_size")
        .record((attempts.len() + recording.attempts.len()) as f64);
    let began = Instant::now();
    let rewrite = queued.iter().any(|q| q.window.rewrite);
    let mut written = write(settings, business_id, &attempts, &recording, rewrite).await;
    for pause in RETRY_PAUSES {
        let Err(error) = &written else {
            break;
        };
        tracing::warn!(%business_id, %error, attempts = attempts.len() + recording.attempts.len(),
            retry_in = ?pause, "recording webhook attempts failed; writing them again");
        metrics::counter!("ontab_webhook_record_retries_total").increment(1);
        tokio::time::sleep(pause).await;
        written = write(settings, business_id, &attempts, &recording, true).await;
    }
    match written {
        Ok((recorded, window, jobs)) => {
            settled(settings, business_id, &queued, &current, &window, began).await;
            // A delivery comes once per delivery of its subject's next run.
            let mut outcomes: HashMap<Uuid, String> = HashMap::new();
            let mut next_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
            for row in recorded {
                if let Some(next) = row.next_delivery_id {
                    next_of.entry(row.delivery_id).or_default().push(next);
                }
                outcomes.entry(row.delivery_id).or_insert(row.outcome);
            }
            let mut jobs: HashMap<Uuid, Job> = jobs
                .into_iter()
                .filter_map(|job| job.delivery_id.map(|id| (id, job)))
                .collect();
            for q in queued {
                let mut next: Vec<Job> = q
                    .attempts
                    .iter()
                    .flat_map(|a| next_of.remove(&a.delivery_id).unwrap_or_default())
                    .filter_map(|id| jobs.remove(&id))
                    .collect();
                next.sort_by_key(|job| (job.event.sequence, job.delivery_id));
                let outcomes = if q.window.attempts.is_empty() {
                    q.attempts
                        .iter()
                        .map(|a| outcomes.get(&a.delivery_id).cloned())
                        .collect()
                } else {
                    window_outcomes(&q.window, current.contains(&q.window.epoch), &window)
                };
                // A task that went away leaves its next run's leases to expire.
                let _ = q.reply.send(Ok(Recorded { outcomes, next }));
            }
        }
        Err(error) => {
            let text = error.to_string();
            for q in queued {
                let _ = q.reply.send(Err(text.clone()));
            }
        }
    }
}

/// What the batch writes of windows: the attempts and spills of runs
/// whose window this server still holds, in the same epoch, and how far
/// each of those endpoints' cursors may move once they are written (below
/// the oldest event held that this batch does not settle). Answers it
/// with the epochs that were current.
async fn window_recording(
    settings: &Settings,
    business_id: Uuid,
    queued: &[Queued],
) -> (WindowRecording, HashSet<u64>) {
    let mut recording = WindowRecording::default();
    let mut current = HashSet::new();
    if queued.iter().all(|q| {
        q.window.attempts.is_empty() && q.window.spill.is_empty() && q.window.release.is_empty()
    }) {
        return (recording, current);
    }
    let windows = settings.windows.of(business_id);
    let mut held = windows.lock().await;
    let mut own: HashMap<Uuid, HashSet<i64>> = HashMap::new();
    for q in queued {
        recording.release.extend(q.window.release.iter().copied());
        let Some(endpoint_id) = q.window.endpoint_id() else {
            continue;
        };
        if held.window(endpoint_id, q.window.epoch).is_none() {
            continue;
        }
        current.insert(q.window.epoch);
        own.entry(endpoint_id)
            .or_default()
            .extend(q.window.sequences());
        recording
            .attempts
            .extend(q.window.attempts.iter().map(|(attempt, _)| attempt.clone()));
        recording
            .spill
            .extend(q.window.spill.iter().map(|(spill, _)| spill.clone()));
    }
    for (endpoint_id, sequences) in &own {
        if let Some(window) = held.endpoints.get(endpoint_id) {
            recording
                .settle
                .push((*endpoint_id, window.settle_excluding(sequences)));
        }
    }
    (recording, current)
}

/// Once a batch is written: what it recorded of each window is settled
/// (no longer holds the cursor back), the windows it renewed count as
/// renewed when it began, and the ones it found lost are let go.
async fn settled(
    settings: &Settings,
    business_id: Uuid,
    queued: &[Queued],
    current: &HashSet<u64>,
    window: &WindowRecorded,
    began: Instant,
) {
    if current.is_empty() {
        return;
    }
    let windows = settings.windows.of(business_id);
    let mut held = windows.lock().await;
    for q in queued {
        let Some(endpoint_id) = q.window.endpoint_id() else {
            continue;
        };
        if !current.contains(&q.window.epoch) {
            continue;
        }
        if window.lost.contains(&endpoint_id) {
            if held.window(endpoint_id, q.window.epoch).is_some() {
                held.drop_window(endpoint_id);
            }
            continue;
        }
        let Some(open) = held.window(endpoint_id, q.window.epoch) else {
            continue;
        };
        for sequence in q.window.sequences() {
            open.outstanding.remove(&sequence);
        }
        open.live.renewed(began);
    }
}

/// A window run's outcomes, in the order of its attempts: a 2xx of a
/// window still held was delivered; the others say what the database did.
fn window_outcomes(
    work: &WindowWork,
    current: bool,
    recorded: &WindowRecorded,
) -> Vec<Option<String>> {
    work.attempts
        .iter()
        .map(|(attempt, _)| {
            if !current || recorded.lost.contains(&attempt.endpoint_id) {
                None
            } else if attempt.attempted.delivered() {
                Some("delivered".to_owned())
            } else {
                recorded
                    .outcomes
                    .get(&(attempt.endpoint_id, attempt.event_id))
                    .cloned()
                    .flatten()
            }
        })
        .collect()
}

async fn write(
    settings: &Settings,
    business_id: Uuid,
    attempts: &[ToRecord],
    window: &WindowRecording,
    rewrite: bool,
) -> Result<(Vec<deliveries::Recorded>, WindowRecorded, Vec<Job>), AppError> {
    let actor = Actor::System.recorded();
    let (tx, _) = settings.app.db().begin(business_id, &[], &actor).await?;
    let rows = async {
        if attempts.is_empty() {
            Ok(Vec::new())
        } else {
            deliveries::attempted(
                &tx,
                settings.lease,
                settings.lease_ms,
                &settings.schedule_ms,
                attempts,
            )
            .await
        }
    };
    let windows = async {
        if window.is_empty() {
            Ok(WindowRecorded::default())
        } else {
            deliveries::attempted_window(
                &tx,
                settings.lease,
                settings.lease_ms,
                &settings.schedule_ms,
                window,
                rewrite,
            )
            .await
        }
    };
    let (kind, recorded, window) = tokio::try_join!(deliveries::bookkeeping(&tx), rows, windows)?;
    // A delivery of a next run comes once per delivery recorded before it
    // in the run; `load` reads each once.
    let next: Vec<Uuid> = recorded.iter().filter_map(|r| r.next_delivery_id).collect();
    let jobs = deliveries::load(&tx, kind, &next, settings.lease).await?;
    tx.commit().await?;
    Ok((recorded, window, jobs))
}
