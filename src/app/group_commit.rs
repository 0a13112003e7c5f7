//! Group commit of purchases: purchases of one business that arrive together
//! run in one transaction, so one lock acquisition and one WAL flush serve
//! many orders (the flash-sale case, where every purchase waits for the
//! previous one's commit on the same product row).
//!
//! What each order keeps:
//! - its own outcome: the batch function refuses an order before writing
//!   it, so a refused order writes nothing and the others are unaffected;
//! - arrival order: orders that share a customer or a product are decided
//!   in the order they were queued, as if they ran one after another (an
//!   order held back from a batch, see `choose`, holds back every later
//!   order it shares a row with; orders that share none cannot tell);
//! - its answer only after commit: replies go out once COMMIT succeeded;
//! - idempotency: replays are answered from stored outcomes read in the
//!   batch's transaction, new outcomes are stored in it. A batch that fails
//!   as a whole and was certainly rolled back (a conflict, an idempotency
//!   race, a guard) runs its orders one by one through the ordinary path;
//!   a batch whose COMMIT went unanswered answers every order "outcome
//!   unknown" and runs nothing again;
//! - its deadline: each job moves Queued → Claimed (by a batch) →
//!   Committing, or to Abandoned when its request gives up first. A batch
//!   sends COMMIT only after moving every job to Committing; a request
//!   whose deadline passes abandons its job if it still can (then nothing
//!   of it is written: 503), and otherwise waits for the answer of the
//!   COMMIT already under way.
//!
//! Deadlocks: a batch locks every customer of the batch, then (inside the
//! batch function, as late as it can) every product, each set in id order.
//! Everyone takes customers before products and each kind in id order, so
//! no cycle forms.
//!
//! Latency: a purchase that finds no batch of its business in flight is not
//! made to wait. Each business has a worker that starts a batch as soon as
//! a batch slot is free (`max_inflight` per business), with whatever is
//! queued by then; batches grow only while the slots are busy, i.e. under
//! load. Beside a batch already in flight, the next one starts only once
//! `min_beside` purchases it may take are queued or the first has ended;
//! it never takes a customer of the batch in flight. An optional
//! `wait` lets a batch that already has company wait a little longer for
//! more.
//!
//! Memory: a business's queue and worker live while it buys. A worker whose
//! queue stayed empty for `idle`, with no batch in flight, ends and leaves
//! the map; the business's next purchase starts a new one. Many tenants
//! that bought once cost nothing after that.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::db::idempotency::{self, StoredOutcome};
use crate::db::{DbError, purchase};
use crate::domain::IdempotencyKey;
use crate::domain::records::Order;

use super::idempotency::{Once, Outcome, Render, StoredAnswer};
use super::purchases::{Purchase, buy_alone, count};
use super::transaction::{CommitGate, deadline_passed};
use super::{Actor, App, AppError, Deadline, INVALID_API_KEY, Tenant};

/// Group commit settings (`ontab serve --batch-*`).
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitConfig {
    /// Most purchases in one transaction; 1 turns batching off.
    pub max_size: usize,
    /// Batches of one business running at once.
    pub max_inflight: usize,
    /// Fewest purchases a batch starts with beside another one of its
    /// business; it starts with fewer once the other has ended.
    pub min_beside: usize,
    /// How long a batch that already has company may wait for more.
    pub wait: Duration,
    /// How long a business's queue may stay empty before its worker ends.
    pub idle: Duration,
}

type Reply = Result<Outcome<Order>, AppError>;

struct Job {
    tenant: Tenant,
    deadline: Deadline,
    key: Option<IdempotencyKey>,
    fingerprint: Vec<u8>,
    render: Render<Order>,
    purchase: Purchase,
    state: Arc<JobState>,
    reply: oneshot::Sender<Reply>,
}

const QUEUED: u8 = 0;
const CLAIMED: u8 = 1;
const COMMITTING: u8 = 2;
const ABANDONED: u8 = 3;

/// Where a job stands between its request and the batch that runs it.
struct JobState(AtomicU8);

impl JobState {
    fn cas(&self, from: u8, to: u8) -> bool {
        self.0
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// A batch takes the job, unless its request gave up.
    fn claim(&self) -> bool {
        self.cas(QUEUED, CLAIMED)
    }

    /// The request gives up, unless a COMMIT with its order is under way.
    fn abandon(&self) -> bool {
        self.cas(QUEUED, ABANDONED) || self.cas(CLAIMED, ABANDONED)
    }

    /// The job may be committed: from here its request waits for the answer.
    fn enter_commit(&self) -> bool {
        self.cas(CLAIMED, COMMITTING) || self.0.load(Ordering::Acquire) == COMMITTING
    }

    fn abandoned(&self) -> bool {
        self.0.load(Ordering::Acquire) == ABANDONED
    }
}

/// A job run on its own may commit while its deadline holds and its request
/// still waits.
struct JobGate<'a> {
    deadline: Deadline,
    state: &'a JobState,
}

impl CommitGate for JobGate<'_> {
    fn enter_commit(&self) -> bool {
        !self.deadline.passed() && self.state.enter_commit()
    }
}

/// Abandons the job if the request's future is dropped (the client went
/// away) before its order was committed.
struct AbandonOnDrop(Arc<JobState>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// The per-business queues.
pub struct GroupCommit {
    config: GroupCommitConfig,
    queues: Mutex<HashMap<Uuid, mpsc::UnboundedSender<Job>>>,
}

impl GroupCommit {
    pub(super) fn new(config: GroupCommitConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            queues: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `purchase` in the next batch of its business.
    pub(super) async fn submit(
        self: &Arc<Self>,
        app: &Arc<App>,
        tenant: &Tenant,
        deadline: Deadline,
        once: &Once<'_, Order>,
        purchase: Purchase,
    ) -> Reply {
        let state = Arc::new(JobState(AtomicU8::new(QUEUED)));
        let (reply, mut answer) = oneshot::channel();
        let job = Job {
            tenant: *tenant,
            deadline,
            key: once.key.cloned(),
            fingerprint: once.fingerprint.to_vec(),
            render: once.render,
            purchase,
            state: state.clone(),
            reply,
        };
        self.enqueue(app, job)?;
        metrics::gauge!(QUEUE_LENGTH).increment(1);
        let _gone = AbandonOnDrop(state.clone());
        let abandoned_batch = || AppError::Unavailable("the purchase batch was abandoned".into());
        tokio::select! {
            reply = &mut answer => return reply.unwrap_or_else(|_| Err(abandoned_batch())),
            () = tokio::time::sleep_until(deadline.instant()) => {}
        }
        if state.abandon() {
            return Err(deadline_passed());
        }
        // Its COMMIT is under way: the answer says what happened.
        answer.await.unwrap_or_else(|_| Err(abandoned_batch()))
    }

    /// Queues `job` for its business, starting the business's worker if it
    /// has none. The job is sent while the map is locked: a worker retires
    /// under the same lock once its queue is empty (`retire`), so no job
    /// can land in a queue whose worker has just ended.
    fn enqueue(self: &Arc<Self>, app: &Arc<App>, job: Job) -> Result<(), AppError> {
        let business_id = job.tenant.business_id;
        // A poisoned lock only means a thread panicked while holding it; the
        // map stays consistent (entries are inserted and removed whole).
        let mut queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        queues
            .entry(business_id)
            .or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                let worker = Worker {
                    app: Arc::downgrade(app),
                    owner: Arc::downgrade(self),
                    business_id,
                    config: self.config,
                    _alive: Alive::new(),
                };
                tokio::spawn(worker.run(receiver));
                sender
            })
            .send(job)
            .map_err(|_| AppError::Unavailable("the purchase queue is closed".into()))
    }
}

/// Removes the queue of `business_id` from `queues` if it is still empty
/// and none of the business's `max_inflight` batch slots is taken; answers
/// whether it did (then its worker ends).
fn retire<T>(
    queues: &Mutex<HashMap<Uuid, mpsc::UnboundedSender<T>>>,
    business_id: Uuid,
    queue: &mpsc::UnboundedReceiver<T>,
    slots: &Semaphore,
    max_inflight: usize,
) -> bool {
    let mut queues = queues
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Jobs are sent under this lock (`enqueue`), so the queue stays empty
    // until the entry is gone. A batch in flight keeps the worker: a new
    // worker would not count its slot, and the business could run more
    // batches at once than `max_inflight`.
    if !queue.is_empty() || slots.available_permits() < max_inflight {
        return false;
    }
    queues.remove(&business_id);
    true
}

/// Purchases queued for their business's next batch (all businesses): the
/// backlog group commit is working through.
const QUEUE_LENGTH: &str = "ontab_purchase_queue_length";

/// A job leaves the queue for a batch.
fn dequeued(job: Job) -> Job {
    left_queue();
    job
}

/// A job leaves the queue, for a batch or because its request gave up.
fn left_queue() {
    metrics::gauge!(QUEUE_LENGTH).decrement(1);
}

/// Businesses with a purchase queue and worker of their own (those that
/// bought within the last `--batch-worker-idle`).
const QUEUES: &str = "ontab_purchase_queues";

/// Counts a worker in [`QUEUES`] for as long as it lives.
struct Alive;

impl Alive {
    fn new() -> Self {
        metrics::gauge!(QUEUES).increment(1);
        Alive
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        metrics::gauge!(QUEUES).decrement(1);
    }
}

/// Forms the batches of one business, in arrival order. Holds the app and
/// the queues only weakly: when the app goes, its queues close and the
/// worker ends.
struct Worker {
    app: Weak<App>,
    owner: Weak<GroupCommit>,
    business_id: Uuid,
    config: GroupCommitConfig,
    _alive: Alive,
}

impl Worker {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Job>) {
        let config = self.config;
        let max_inflight = config.max_inflight.max(1);
        let slots = Arc::new(Semaphore::new(max_inflight));
        // Told each time a batch ends (a stored permit, so none is missed).
        let ended = Arc::new(Notify::new());
        let company = config.min_beside.clamp(1, config.max_size.max(1));
        let busy = Busy::default();
        // Taken from the queue, not yet in a batch, in arrival order: what
        // the last batch held back (see `choose`) and what came after it.
        let mut held: VecDeque<Job> = VecDeque::new();
        'batches: loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            if held.is_empty() {
                match tokio::time::timeout(config.idle, queue.recv()).await {
                    Ok(Some(job)) => held.push_back(job),
                    Ok(None) => return,
                    Err(_) => {
                        drop(slot);
                        let Some(owner) = self.owner.upgrade() else {
                            return;
                        };
                        if retire(
                            &owner.queues,
                            self.business_id,
                            &queue,
                            &slots,
                            max_inflight,
                        ) {
                            return;
                        }
                        continue;
                    }
                }
            }
            let mut flush = "idle";
            let deadline = Instant::now() + config.wait;
            let chosen = loop {
                while let Ok(job) = queue.try_recv() {
                    held.push_back(job);
                }
                // A request that gave up is not run; held, it would still
                // hold back the purchases that share a row with it.
                held.retain(|job| {
                    let gone = job.state.abandoned();
                    if gone {
                        left_queue();
                    }
                    !gone
                });
                if held.is_empty() {
                    continue 'batches;
                }
                let chosen = choose(
                    held.iter().map(|job| &job.purchase),
                    &busy.lock(),
                    config.max_size,
                );
                let taken = chosen.iter().filter(|&&take| take).count();
                // Beside a batch in flight, a batch starts only with company
                // (`min_beside`), or once the other has ended: a small batch
                // beside another mostly waited for its row locks, and paid a
                // whole batch's overhead for a few orders. With no batch in
                // flight nothing is busy, so the first purchase held is
                // always taken.
                if taken < company && slots.available_permits() + 1 < max_inflight {
                    flush = "beside";
                    tokio::select! {
                        job = queue.recv() => match job {
                            Some(job) => held.push_back(job),
                            None => return,
                        },
                        () = ended.notified() => {}
                    }
                    continue;
                }
                // An optional `--batch-wait` lets a batch with company wait
                // a little longer for more.
                if taken > 1 && taken < config.max_size && !config.wait.is_zero() {
                    match tokio::time::timeout_at(deadline.into(), queue.recv()).await {
                        Ok(Some(job)) => {
                            held.push_back(job);
                            continue;
                        }
                        _ => flush = "wait",
                    }
                }
                break chosen;
            };
            let mut jobs = Vec::new();
            let mut kept = VecDeque::with_capacity(held.len());
            for (index, job) in held.drain(..).enumerate() {
                if chosen.get(index).copied().unwrap_or(false) {
                    jobs.push(dequeued(job));
                } else {
                    kept.push_back(job);
                }
            }
            let held_back = chosen.iter().filter(|&&take| !take).count();
            metrics::counter!("ontab_purchase_held_back_total")
                .increment(u64::try_from(held_back).unwrap_or(u64::MAX));
            held = kept;
            if jobs.len() >= config.max_size {
                flush = "full";
            }
            metrics::counter!("ontab_purchase_batches_total", "flush" => flush).increment(1);
            metrics::histogram!("ontab_purchase_batch_size").record(jobs.len() as f64);
            let Some(app) = self.app.upgrade() else {
                return;
            };
            let in_flight = busy.enter(jobs.iter().map(|job| job.purchase.customer_id));
            let ended = ended.clone();
            tokio::spawn(async move {
                run_batch(&app, jobs).await;
                // Before the slot is free: a batch formed once it is must
                // not see these customers busy.
                drop(in_flight);
                drop(slot);
                ended.notify_one();
            });
        }
    }
}

/// The customers of a business's batches in flight. A batch locks its
/// customers first, so a purchase whose customer is in a batch in flight
/// would stop its own batch at the first statement until that batch
/// committed: two batches in flight, run one after the other.
#[derive(Default, Clone)]
struct Busy(Arc<Mutex<HashSet<Uuid>>>);

impl Busy {
    fn enter(&self, customers: impl Iterator<Item = Uuid>) -> InFlight {
        let customers: Vec<Uuid> = customers.collect();
        self.lock().extend(customers.iter().copied());
        InFlight {
            busy: self.clone(),
            customers,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        // Entries are added and removed whole: a panicked holder left the
        // set consistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A batch's customers, busy until it is dropped (also when the batch's
/// task is aborted).
struct InFlight {
    busy: Busy,
    customers: Vec<Uuid>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut busy = self.busy.lock();
        for customer in &self.customers {
            busy.remove(customer);
        }
    }
}

/// Which of `held` (in arrival order) the next batch takes: at most `max`,
/// none whose customer is `busy`, i.e. in a batch in flight (it would hold
/// the whole batch back at its first lock; it waits for the next batch
/// instead, and its company goes now), and none that shares a customer or
/// a product with a purchase held back before it, so that purchases that
/// may compete for a row (stock, credit) are still decided in arrival
/// order. Purchases that share only products with a batch in flight are
/// taken: products are locked last, so such a batch does its work beside
/// the other and waits only for that one's commit.
fn choose<'a>(
    held: impl Iterator<Item = &'a Purchase>,
    busy: &HashSet<Uuid>,
    max: usize,
) -> Vec<bool> {
    let mut chosen = Vec::new();
    let mut taken = 0;
    let mut waiting_customers: HashSet<Uuid> = HashSet::new();
    let mut waiting_products: HashSet<Uuid> = HashSet::new();
    for purchase in held {
        if taken >= max {
            break;
        }
        let blocked = busy.contains(&purchase.customer_id)
            || waiting_customers.contains(&purchase.customer_id)
            || purchase
                .lines
                .iter()
                .any(|line| waiting_products.contains(&line.product_id));
        if blocked {
            waiting_customers.insert(purchase.customer_id);
            waiting_products.extend(purchase.lines.iter().map(|line| line.product_id));
        } else {
            taken += 1;
        }
        chosen.push(!blocked);
    }
    chosen
}

/// Attempts of a whole batch before its orders run one by one.
const BATCH_ATTEMPTS: u32 = 2;

async fn run_batch(app: &App, mut jobs: Vec<Job>) {
    // A request that gave up while queued (503) is not run.
    jobs.retain(|job| job.state.claim());
    // One Idempotency-Key twice in a batch would race itself: the repeats
    // run after the batch, on their own, and replay its outcome.
    let mut seen = HashSet::new();
    let (mut batch, repeats): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|job| job.key.as_ref().is_none_or(|key| seen.insert(key.clone())));
    if batch.len() > 1 {
        let mut attempt = 1;
        loop {
            match try_batch(app, &batch).await {
                Ok(replies) => {
                    for (job, reply) in batch.drain(..).zip(replies) {
                        count(&reply);
                        let _ = job.reply.send(reply);
                    }
                    break;
                }
                Err(BatchFailed::Unknown(detail)) => {
                    // It may have committed: running its orders again could
                    // charge twice. Each client resolves it with its key.
                    tracing::warn!(%detail, size = batch.len(), "a batch's COMMIT went unanswered");
                    for job in batch.drain(..) {
                        let reply = Err(AppError::OutcomeUnknown(detail.clone()));
                        count(&reply);
                        let _ = job.reply.send(reply);
                    }
                    break;
                }
                // A conflict with another transaction: the same batch may
                // simply run again (an idempotency race may not: its
                // orders must replay, one by one).
                Err(BatchFailed::RolledBack(DbError::Conflict(_))) if attempt < BATCH_ATTEMPTS => {
                    attempt += 1;
                }
                Err(failure) => {
                    tracing::debug!(
                        ?failure,
                        size = batch.len(),
                        "batch rolled back: running its orders one by one"
                    );
                    metrics::counter!("ontab_purchase_batch_fallbacks_total").increment(1);
                    break;
                }
            }
        }
    }
    // Whatever is left (a lone order, a fallen-back batch, the repeats)
    // runs one by one, in arrival order.
    for job in batch.into_iter().chain(repeats) {
        run_alone(app, job).await;
    }
}

/// The ordinary path for one order of a batch.
async fn run_alone(app: &App, job: Job) {
    if job.state.abandoned() {
        return;
    }
    let gate = JobGate {
        deadline: job.deadline,
        state: &job.state,
    };
    let once = Once {
        key: job.key.as_ref(),
        fingerprint: &job.fingerprint,
        render: job.render,
    };
    let reply = buy_alone(app, &job.tenant, job.deadline, &gate, &once, &job.purchase).await;
    count(&reply);
    let _ = job.reply.send(reply);
}

/// Why a batch did not commit.
#[derive(Debug)]
enum BatchFailed {
    /// Certainly rolled back: its orders may run again.
    RolledBack(DbError),
    /// COMMIT went unanswered.
    Unknown(String),
}

impl From<DbError> for BatchFailed {
    fn from(error: DbError) -> Self {
        match error {
            DbError::CommitOutcomeUnknown(detail) => BatchFailed::Unknown(detail),
            other => BatchFailed::RolledBack(other),
        }
    }
}

/// One transaction for all of `jobs`; `Err` means nothing was committed, or
/// (`Unknown`) that nobody can tell.
async fn try_batch(app: &App, jobs: &[Job]) -> Result<Vec<Reply>, BatchFailed> {
    let business_id = jobs[0].tenant.business_id;
    // Keys revoked since their request was authenticated are found as the
    // transaction begins; their orders are answered 401 below, not run.
    let mut key_ids: Vec<Uuid> = jobs.iter().map(|job| job.tenant.key_id).collect();
    key_ids.sort_unstable();
    key_ids.dedup();
    // Purchases change no customer, so no history names the actor; the
    // first key stands for the batch.
    let actor = Actor::ApiKey(jobs[0].tenant.key_id).recorded();
    let (tx, revoked_keys) = app.db.begin(business_id, &key_ids, &actor).await?;
    for key_id in &revoked_keys {
        app.forget_api_key(*key_id);
    }

    let mut customers: Vec<Uuid> = jobs.iter().map(|job| job.purchase.customer_id).collect();
    customers.sort_unstable();
    customers.dedup();
    let keys: Vec<&str> = jobs
        .iter()
        .filter_map(|job| job.key.as_ref().map(IdempotencyKey::as_str))
        .collect();

    // Pipelined below, so every statement is readied first: each then
    // reaches PostgreSQL in the order it was issued (see TenantTx::prepare).
    idempotency::prepare(&tx).await?;
    purchase::prepare_batch(&tx).await?;
    // The customers' locks, then the stored outcomes, read after the locks
    // so that a concurrent request with the same key that held one has
    // committed: one round trip.
    let (_, stored) = tokio::try_join!(
        purchase::lock_customers(&tx, &customers),
        idempotency::find_many(&tx, &keys)
    )?;

    // Each order: a replay, a reuse refusal, or a run.
    let plans: Vec<Option<Reply>> = jobs
        .iter()
        .map(|job| {
            if revoked_keys.contains(&job.tenant.key_id) {
                // Before any replay: a revoked key gets 401, never a stored answer.
                return Some(Err(AppError::Unauthorized(INVALID_API_KEY)));
            }
            let outcome = job.key.as_ref().and_then(|key| stored.get(key.as_str()))?;
            Some(if outcome.fingerprint == job.fingerprint {
                Ok(Outcome::Replayed(StoredAnswer {
                    status: outcome.status,
                    body: outcome.body.clone(),
                }))
            } else {
                Err(AppError::IdempotencyKeyReused)
            })
        })
        .collect();
    let to_run: Vec<(Uuid, &crate::domain::Lines)> = jobs
        .iter()
        .zip(&plans)
        .filter(|(_, plan)| plan.is_none())
        .map(|(job, _)| (job.purchase.customer_id, &job.purchase.lines))
        .collect();
    let mut outcomes = purchase::execute_batch(&tx, &to_run).await?.into_iter();

    let mut replies = Vec::with_capacity(jobs.len());
    let mut to_store = Vec::new();
    for (plan, job) in plans.into_iter().zip(jobs) {
        if let Some(reply) = plan {
            replies.push(reply);
            continue;
        }
        let outcome = outcomes
            .next()
            .ok_or_else(|| DbError::Decode("a planned purchase did not run".into()))?;
        let result = outcome.map_err(AppError::from);
        if let Some(key) = &job.key {
            // What the ordinary path would store; an answer the edge would
            // not store fails the batch, and the order runs on its own.
            let answer = (job.render)(&result)
                .ok_or_else(|| DbError::Decode("an order's answer is not one to store".into()))?;
            to_store.push((
                key.as_str(),
                StoredOutcome {
                    fingerprint: job.fingerprint.clone(),
                    status: answer.status,
                    body: answer.body,
                },
            ));
        }
        replies.push(result.map(Outcome::Fresh));
    }
    let to_store: Vec<(&str, &StoredOutcome)> = to_store
        .iter()
        .map(|(key, outcome)| (*key, outcome))
        .collect();
    idempotency::store_many(&tx, &to_store).await?;
    // Every request still waits, and from now on will wait for the answer;
    // if one gave up, the batch is rolled back and its orders run one by
    // one, without that one.
    if !jobs.iter().all(|job| job.state.enter_commit()) {
        return Err(BatchFailed::RolledBack(DbError::Unavailable(
            "a request of the batch gave up before its commit".into(),
        )));
    }
    tx.commit().await?;
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> JobState {
        JobState(AtomicU8::new(QUEUED))
    }

    #[test]
    fn a_request_can_give_up_until_its_commit_is_under_way() {
        let queued = state();
        assert!(queued.abandon());
        assert!(!queued.claim(), "an abandoned job is never run");

        let claimed = state();
        assert!(claimed.claim());
        assert!(claimed.abandon());
        assert!(!claimed.enter_commit(), "nor committed");

        let committing = state();
        assert!(committing.claim() && committing.enter_commit());
        assert!(!committing.abandon(), "its request waits for the answer");
        assert!(committing.enter_commit(), "a retry of the commit may go on");
    }

    #[test]
    fn a_queue_retires_only_when_empty_with_no_batch_in_flight() {
        let business = Uuid::now_v7();
        let other = Uuid::now_v7();
        let (sender, mut queue) = mpsc::unbounded_channel::<u8>();
        let (other_sender, _other_queue) = mpsc::unbounded_channel::<u8>();
        let queues = Mutex::new(HashMap::from([
            (business, sender.clone()),
            (other, other_sender),
        ]));
        let slots = Semaphore::new(2);

        sender.send(1).expect("open");
        assert!(
            !retire(&queues, business, &queue, &slots, 2),
            "a queued job keeps it"
        );
        assert_eq!(queue.try_recv().ok(), Some(1));

        let batch = slots.try_acquire().expect("a free slot");
        assert!(
            !retire(&queues, business, &queue, &slots, 2),
            "a batch in flight keeps it"
        );
        assert_eq!(queues.lock().expect("lock").len(), 2);

        drop(batch);
        assert!(retire(&queues, business, &queue, &slots, 2));
        let left = queues.lock().expect("lock");
        assert!(!left.contains_key(&business) && left.contains_key(&other));
    }

    fn purchase(customer: Uuid, products: &[Uuid]) -> Purchase {
        let items: Vec<(Uuid, i128)> = products.iter().map(|&product| (product, 1)).collect();
        Purchase::parse(customer, &items).expect("a valid purchase")
    }

    #[test]
    fn a_batch_takes_no_customer_in_flight_and_keeps_the_order_of_what_it_holds_back() {
        let [a, b, c, d] = [(); 4].map(|()| Uuid::now_v7());
        let [p, q, r, s] = [(); 4].map(|()| Uuid::now_v7());
        let held = [
            purchase(a, &[p]),    // a is in flight: held back
            purchase(b, &[q]),    // taken, though q may be in flight too
            purchase(c, &[p, r]), // shares p with a held-back purchase
            purchase(a, &[s]),    // a again
            purchase(d, &[s]),    // shares s with a held-back purchase
            purchase(b, &[r]),    // r waits with c: held back, after c
        ];
        let busy = HashSet::from([a]);
        assert_eq!(
            choose(held.iter(), &busy, 64),
            [false, true, false, false, false, false],
            "r is held back by c, so b's second purchase waits too"
        );

        let held = [purchase(b, &[q]), purchase(c, &[r]), purchase(d, &[s])];
        assert_eq!(choose(held.iter(), &HashSet::new(), 64), [true, true, true]);
        assert_eq!(
            choose(held.iter(), &HashSet::new(), 2),
            [true, true],
            "at most `max`, the rest stays held"
        );
        assert_eq!(
            choose(held.iter(), &HashSet::from([b, c, d]), 64),
            [false, false, false],
            "every customer in flight: nothing to start beside them"
        );
    }
}
