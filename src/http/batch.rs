//! Group commit of purchases: purchases of one business that arrive together
//! run in one transaction, so one lock acquisition and one WAL flush serve
//! many orders (the flash-sale case, where every purchase waits for the
//! previous one's commit on the same product row).
//!
//! What each order keeps:
//! - its own outcome: `ontab_purchase` refuses before it writes, so a refused
//!   order writes nothing and the others of the batch are unaffected;
//! - arrival order: orders are sent in the order they were queued and
//!   PostgreSQL runs a connection's statements in order, so the result is
//!   the serial execution of the batch;
//! - its answer only after commit: replies go out once COMMIT succeeded;
//! - idempotency: replays are answered from stored outcomes read in the
//!   batch's transaction, new outcomes are stored in it. Any failure of the
//!   batch as a whole (a conflict, an idempotency race, a broken connection)
//!   rolls everything back, and each order then runs on its own through the
//!   ordinary path, which retries and replays as usual.
//!
//! Deadlocks: a batch locks every customer of the batch, then (in
//! `ontab_purchase_batch`, migrations/0011, as late as it can) every
//! product, each set in id order. Single purchases lock their customer, then
//! their products in id order; payments and returns lock a customer (then
//! products); adjustments a product. Everyone takes customers before
//! products and each kind in id order, so no cycle forms.
//!
//! Latency: a lone purchase is not made to wait. Each business has a worker
//! that starts a batch as soon as a batch slot is free (`max_inflight` per
//! business), with whatever is queued by then; batches grow only while the
//! slots are busy, i.e. under load. An optional `wait` lets a batch that
//! already has company wait a little longer for more.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::ApiError;
use super::auth::Tenant;
use super::idempotent::{Reply, run_once_raw};
use super::metrics::purchase_outcome;
use super::purchases::{Purchase, outcome_code, purchase_answer};
use crate::db::idempotency::{self, StoredOutcome};
use crate::db::{Db, DbError, Param, purchase};
use crate::domain::Lines;

/// Group commit settings (`ontab serve --batch-*`).
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most purchases in one transaction; 1 turns batching off.
    pub max_size: usize,
    /// Batches of one business running at once.
    pub max_inflight: usize,
    /// How long a batch that already has company may wait for more.
    pub wait: Duration,
}

struct Job {
    business_id: Uuid,
    key_id: Uuid,
    key: Option<String>,
    fingerprint: Vec<u8>,
    purchase: Purchase,
    lines: Lines,
    reply: oneshot::Sender<Reply>,
}

/// The per-business queues.
pub struct Batcher {
    db: Db,
    config: BatchConfig,
    queues: Mutex<HashMap<Uuid, mpsc::UnboundedSender<Job>>>,
}

impl Batcher {
    pub fn new(db: Db, config: BatchConfig) -> Arc<Self> {
        Arc::new(Self {
            db,
            config,
            queues: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `purchase` in the next batch of its business.
    pub async fn submit(
        self: &Arc<Self>,
        tenant: &Tenant,
        key: Option<String>,
        fingerprint: Vec<u8>,
        purchase: Purchase,
        lines: Lines,
    ) -> Reply {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            business_id: tenant.business_id,
            key_id: tenant.key_id,
            key,
            fingerprint,
            purchase,
            lines,
            reply,
        };
        self.queue(tenant.business_id).send(job).map_err(|_| {
            ApiError::Database(DbError::Unavailable("the purchase queue is closed".into()))
        })?;
        answer.await.map_err(|_| {
            ApiError::Database(DbError::Unavailable(
                "the purchase batch was abandoned".into(),
            ))
        })?
    }

    fn queue(self: &Arc<Self>, business_id: Uuid) -> mpsc::UnboundedSender<Job> {
        // A poisoned lock only means another request panicked while holding
        // it; the map itself is still consistent.
        let mut queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        queues
            .entry(business_id)
            .or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                tokio::spawn(worker(self.clone(), receiver));
                sender
            })
            .clone()
    }
}

/// Forms the batches of one business, in arrival order.
async fn worker(batcher: Arc<Batcher>, mut queue: mpsc::UnboundedReceiver<Job>) {
    let config = batcher.config;
    let slots = Arc::new(Semaphore::new(config.max_inflight.max(1)));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut jobs = vec![first];
        let mut flush = "idle";
        let deadline = Instant::now() + config.wait;
        while jobs.len() < config.max_size {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) if jobs.len() > 1 && !config.wait.is_zero() => {
                    match tokio::time::timeout_at(deadline.into(), queue.recv()).await {
                        Ok(Some(job)) => jobs.push(job),
                        _ => {
                            flush = "wait";
                            break;
                        }
                    }
                }
                Err(_) => break,
            }
        }
        if jobs.len() >= config.max_size {
            flush = "full";
        }
        metrics::counter!("ontab_purchase_batches_total", "flush" => flush).increment(1);
        metrics::histogram!("ontab_purchase_batch_size").record(jobs.len() as f64);
        let db = batcher.db.clone();
        tokio::spawn(async move {
            run_batch(&db, jobs).await;
            drop(slot);
        });
    }
}

const LOCK_CUSTOMERS: &str =
    "SELECT 1 FROM customers WHERE business_id = $1 AND id = ANY ($2) ORDER BY id FOR UPDATE";

/// Attempts of a whole batch before its orders run one by one.
const BATCH_ATTEMPTS: u32 = 2;

async fn run_batch(db: &Db, mut jobs: Vec<Job>) {
    // A request that gave up while queued (its timeout answered 503, or the
    // client went away) is not run: 503 promises the client may retry.
    jobs.retain(|job| !job.reply.is_closed());
    if jobs.is_empty() {
        return;
    }
    // One Idempotency-Key twice in a batch would race itself: the repeats
    // run after the batch, on their own, and replay its outcome.
    let mut seen = HashSet::new();
    let (batch, repeats): (Vec<Job>, Vec<Job>) = jobs
        .drain(..)
        .partition(|job| job.key.as_ref().is_none_or(|key| seen.insert(key.clone())));
    let mut jobs = batch;
    if jobs.len() == 1 {
        run_alone(db, jobs).await;
    } else {
        let mut attempt = 1;
        loop {
            match try_batch(db, &jobs).await {
                Ok(replies) => {
                    for (job, reply) in jobs.drain(..).zip(replies) {
                        if let Some(outcome) = reply.outcome {
                            purchase_outcome(outcome);
                        }
                        let _ = job.reply.send(reply.reply);
                    }
                    break;
                }
                // A conflict with another transaction: the same batch may
                // simply run again (an idempotency race may not: its
                // orders must replay, one by one).
                Err(DbError::Conflict(_)) if attempt < BATCH_ATTEMPTS => {
                    attempt += 1;
                }
                Err(error) => {
                    tracing::debug!(%error, size = jobs.len(), "batch failed as a whole: running its orders one by one");
                    metrics::counter!("ontab_purchase_batch_fallbacks_total").increment(1);
                    run_alone(db, jobs).await;
                    break;
                }
            }
        }
    }
    run_alone(db, repeats).await;
}

/// The ordinary path, one order after another, in arrival order.
async fn run_alone(db: &Db, jobs: Vec<Job>) {
    for job in jobs {
        if job.reply.is_closed() {
            continue;
        }
        let tenant = Tenant {
            business_id: job.business_id,
            key_id: job.key_id,
        };
        let mut reply = job.reply;
        let work = run_once_raw(db, &tenant, job.key, job.fingerprint, &job.purchase);
        // As on the path without batching, where the request's own future
        // holds the transaction: a request that gives up (its timeout
        // answered 503) drops its unfinished transaction, which rolls back,
        // rather than letting it commit once a lock it waits for is free.
        tokio::select! {
            answer = work => {
                let _ = reply.send(answer);
            }
            () = reply.closed() => {
                tracing::debug!("a purchase's request gave up before it committed: rolled back");
            }
        }
    }
}

/// An order's reply from a committed batch, and its answer when it ran
/// (rather than replayed), for the outcome metrics.
struct Done {
    reply: Reply,
    outcome: Option<&'static str>,
}

/// One transaction for all of `jobs`; `Err` means nothing was committed.
async fn try_batch(db: &Db, jobs: &[Job]) -> Result<Vec<Done>, DbError> {
    let business_id = jobs[0].business_id;
    // Keys revoked since their request was authenticated are found as the
    // transaction begins; their orders are answered 401 below, not run.
    let mut key_ids: Vec<Uuid> = jobs.iter().map(|job| job.key_id).collect();
    key_ids.sort_unstable();
    key_ids.dedup();
    let (tx, revoked_keys) = db.begin_for_keys(business_id, &key_ids).await?;

    let mut customers: Vec<Uuid> = jobs.iter().map(|job| job.purchase.customer_id()).collect();
    customers.sort_unstable();
    customers.dedup();
    let keys: Vec<&str> = jobs.iter().filter_map(|job| job.key.as_deref()).collect();

    // Pipelined below, so every statement is readied first: each then
    // reaches PostgreSQL in the order it was issued (see TenantTx::prepare).
    let lock_types = [Type::UUID, Type::UUID_ARRAY];
    tx.prepare(LOCK_CUSTOMERS, &lock_types).await?;
    idempotency::prepare_batch(&tx).await?;
    purchase::prepare_batch(&tx).await?;

    // The customers' locks (by id; the products' come last, in the batch
    // function), then the stored outcomes, read after the locks so that a
    // concurrent request with the same key that held one has committed:
    // one round trip.
    let customer_params: [Param<'_>; 2] =
        [(&business_id, Type::UUID), (&customers, Type::UUID_ARRAY)];
    let lock_customers = tx.query(LOCK_CUSTOMERS, &customer_params);
    let stored = idempotency::find_many(&tx, &keys);
    let (_, stored) = tokio::try_join!(lock_customers, stored)?;

    // Each order: a replay, a reuse refusal, or a run, all sent at once and
    // executed by PostgreSQL in this order.
    enum Plan<'a> {
        Answer(Reply),
        Run(&'a Job),
    }
    let plans: Vec<Plan<'_>> = jobs
        .iter()
        .map(
            |job| match job.key.as_ref().and_then(|key| stored.get(key)) {
                // Before any replay: a revoked key gets 401, never a stored answer.
                _ if revoked_keys.contains(&job.key_id) => {
                    Plan::Answer(Err(ApiError::from(DbError::KeyRevoked)))
                }
                Some(outcome) if outcome.fingerprint != job.fingerprint => {
                    Plan::Answer(Err(ApiError::IdempotencyKeyReused))
                }
                Some(outcome) => Plan::Answer(
                    StatusCode::from_u16(outcome.status)
                        .map(|status| (status, outcome.body.clone(), true))
                        .map_err(|_| {
                            ApiError::Database(DbError::Decode(format!(
                                "stored status {}",
                                outcome.status
                            )))
                        }),
                ),
                None => Plan::Run(job),
            },
        )
        .collect();
    let to_run: Vec<(Uuid, &Lines)> = plans
        .iter()
        .filter_map(|plan| match plan {
            Plan::Run(job) => Some((job.purchase.customer_id(), &job.lines)),
            Plan::Answer(_) => None,
        })
        .collect();
    let mut outcomes = purchase::execute_batch(&tx, &to_run).await?.into_iter();

    let mut done = Vec::with_capacity(jobs.len());
    let mut to_store = Vec::new();
    for (plan, job) in plans.into_iter().zip(jobs) {
        let outcome = match plan {
            Plan::Answer(reply) => {
                done.push(Done {
                    reply,
                    outcome: None,
                });
                continue;
            }
            Plan::Run(_) => outcomes
                .next()
                .ok_or_else(|| DbError::Decode("a planned purchase did not run".into()))?,
        };
        let answer = purchase_answer(outcome);
        // What the ordinary path would store: the answer, or a definitive
        // refusal (anything else fails the batch).
        let (status, body) = match &answer {
            Ok((status, body)) => (*status, body.clone()),
            Err(error) if error.is_definitive() => (error.status(), error.body()),
            Err(error) => return Err(DbError::Decode(error.to_string())),
        };
        if let Some(key) = &job.key {
            to_store.push((
                key.as_str(),
                StoredOutcome {
                    fingerprint: job.fingerprint.clone(),
                    status: status.as_u16(),
                    body,
                },
            ));
        }
        done.push(Done {
            outcome: Some(outcome_code(&answer)),
            reply: answer.map(|(status, body)| (status, body, false)),
        });
    }
    // A request of the batch that gave up meanwhile (503) must find nothing
    // written: rather than commit its order with the others, the batch is
    // rolled back and its orders run one by one, skipping that one.
    if jobs.iter().any(|job| job.reply.is_closed()) {
        return Err(DbError::Unavailable(
            "a request of the batch gave up before its commit".into(),
        ));
    }
    let to_store: Vec<(&str, &StoredOutcome)> = to_store
        .iter()
        .map(|(key, outcome)| (*key, outcome))
        .collect();
    idempotency::store_many(&tx, &to_store).await?;
    tx.commit().await?;
    Ok(done)
}
