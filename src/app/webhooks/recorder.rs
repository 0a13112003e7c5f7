//! Records delivery attempts a batch at a time, as group commit does for
//! purchases: every task that finished an attempt queues it here and waits;
//! attempts that finish together are written together, one transaction per
//! business (migrations/0010), which in the same transaction leases each
//! delivered subject's next delivery and reads its body. A flush starts
//! `GATHER` after one of `FLUSHES` is free and something is queued, with
//! whatever is queued by then: a lone attempt waits those few
//! milliseconds, and under load each flush carries the attempts of that
//! window rather than the handful that finished during the last flush.
//!
//! Each task still sends its own subject's deliveries one after another and
//! waits for its attempt to be recorded before the next: per-subject order
//! and the lease rules are the database's, as before. What a batch shares
//! is the transaction: tenant set-up, one statement for all the attempts,
//! one for all the bodies, one commit (asynchronous, see
//! `deliveries::bookkeeping`). A flush that fails answers every
//! attempt of its business with the error; their leases then expire and the
//! deliveries go again, with the same webhook-id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::delivery::AbortOnDrop;
use crate::app::{Actor, App, AppError};
use crate::db::deliveries::{self, Job, ToRecord};

/// Attempts written in one flush at most (across businesses).
const MAX_BATCH: usize = 256;
/// Flushes under way at once. Each subject's worker waits for its flush
/// before it sends the next event, so this bounds a busy subject's pace:
/// with 2, hot-product at 64 clients delivered ~450/s and lagged 18 s;
/// with 4, it kept up (docs/benchmarks.md, "Attempts recorded in batches").
const FLUSHES: usize = 4;
/// How long a flush gathers before it writes. Most of a flush's cost is
/// per statement, not per attempt (planning its statements for the rows at
/// hand, `deliveries::bookkeeping`, the tenant's transaction): flushing as
/// soon as a slot was free wrote ~5 attempts a flush at 1,300 deliveries/s
/// and cost PostgreSQL 365 µs per purchase; gathering 5 ms writes ~26 and
/// cost 165 µs (docs/benchmarks.md, "Gathering"). It adds 5 ms to each
/// step of a subject's backlog, which is drained `FLUSHES` steps at a time
/// across subjects.
const GATHER: Duration = Duration::from_millis(5);

/// What recording an attempt came to.
#[derive(Debug)]
pub struct Recorded {
    /// `delivered`, `retrying`, `gave_up`, `disabled`; `None` when the
    /// lease was lost (another server holds the delivery now).
    pub outcome: Option<String>,
    /// The subject's next delivery, leased to this server, when the attempt
    /// delivered and the caller asked to go on.
    pub next: Option<Job>,
}

struct Queued {
    business_id: Uuid,
    attempt: ToRecord,
    reply: oneshot::Sender<Result<Recorded, String>>,
}

/// The lease and retry settings every flush writes with.
struct Settings {
    app: Arc<App>,
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
    pub fn start(app: Arc<App>, lease: Uuid, lease_ms: i32, schedule_ms: Vec<i64>) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        let settings = Arc::new(Settings {
            app,
            lease,
            lease_ms,
            schedule_ms,
        });
        Self {
            queue,
            _flusher: AbortOnDrop(tokio::spawn(flush_all(settings, queued))),
        }
    }

    /// Records one attempt; answers once its batch committed.
    pub async fn record(&self, business_id: Uuid, attempt: ToRecord) -> Result<Recorded, String> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued {
                business_id,
                attempt,
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
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(next) => batch.push(next),
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
    let attempts: Vec<ToRecord> = queued.iter().map(|q| q.attempt.clone()).collect();
    metrics::histogram!("ontab_webhook_record_batch_size").record(attempts.len() as f64);
    match write(settings, business_id, &attempts).await {
        Ok((recorded, jobs)) => {
            let mut outcomes: HashMap<Uuid, _> =
                recorded.into_iter().map(|r| (r.delivery_id, r)).collect();
            let mut jobs: HashMap<Uuid, Job> =
                jobs.into_iter().map(|job| (job.delivery_id, job)).collect();
            for q in queued {
                let recorded = outcomes.remove(&q.attempt.delivery_id);
                let next = recorded
                    .as_ref()
                    .and_then(|r| r.next_delivery_id)
                    .and_then(|id| jobs.remove(&id));
                // A task that went away leaves its next lease to expire.
                let _ = q.reply.send(Ok(Recorded {
                    outcome: recorded.map(|r| r.outcome),
                    next,
                }));
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

async fn write(
    settings: &Settings,
    business_id: Uuid,
    attempts: &[ToRecord],
) -> Result<(Vec<deliveries::Recorded>, Vec<Job>), AppError> {
    let actor = Actor::System.recorded();
    let (tx, _) = settings.app.db().begin(business_id, &[], &actor).await?;
    let (_, recorded) = tokio::try_join!(
        deliveries::bookkeeping(&tx),
        deliveries::attempted(
            &tx,
            settings.lease,
            settings.lease_ms,
            &settings.schedule_ms,
            attempts,
        ),
    )?;
    let next: Vec<Uuid> = recorded.iter().filter_map(|r| r.next_delivery_id).collect();
    let jobs = deliveries::load(&tx, &next, settings.lease).await?;
    tx.commit().await?;
    Ok((recorded, jobs))
}
