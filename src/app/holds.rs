//! Holds: authorize now, capture later. A hold reserves stock and credit
//! with a purchase's checks and refusals, at today's prices, until its
//! `expires_at`; a capture turns all or part of it into an ordinary order
//! at those prices and releases the rest; a void releases everything. The
//! rules, and the clock that decides expiry, are PostgreSQL's (`db::holds`).
//!
//! Expiry needs no request: every decision already treats a hold past its
//! expiry as released, and [`sweep`] records each expiry (the hold's
//! `expired` ending, its reservations deleted) shortly after, within one
//! sweep interval plus the time to work through the expired holds.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::db::holds;
use crate::db::page::{CreatedKey, Listed, Page};
use crate::domain::records::{Hold, HoldStatus, Order};
use crate::domain::{FieldError, Lines, Refusal};

use super::idempotency::{Once, Outcome};
use super::{Actor, App, AppError, Deadline, Tenant};

/// Seconds a hold lasts unless told otherwise, and the longest it may.
pub const DEFAULT_EXPIRES_IN: i32 = 900;
pub const MAX_EXPIRES_IN: i32 = 2_592_000;

/// A valid hold: the customer, the merged lines, and how long it lasts.
#[derive(Debug, Clone)]
pub struct NewHold {
    pub customer_id: Uuid,
    pub lines: Lines,
    pub expires_in: i32,
}

impl NewHold {
    /// `items` as sent (quantities possibly beyond i64); `expires_in` in
    /// seconds, 1..=2592000, default 900.
    pub fn parse(
        customer_id: Uuid,
        items: &[(Uuid, i128)],
        expires_in: Option<i128>,
    ) -> Result<Self, AppError> {
        let lines = Lines::parse("items", items);
        let expires_in = match expires_in {
            None => Ok(DEFAULT_EXPIRES_IN),
            Some(seconds) => i32::try_from(seconds)
                .ok()
                .filter(|seconds| (1..=MAX_EXPIRES_IN).contains(seconds))
                .ok_or_else(|| {
                    FieldError::new(
                        "expires_in",
                        format!("must be between 1 and {MAX_EXPIRES_IN} seconds"),
                    )
                }),
        };
        match (lines, expires_in) {
            (Ok(lines), Ok(expires_in)) => Ok(Self {
                customer_id,
                lines,
                expires_in,
            }),
            (lines, expires_in) => {
                let mut errors = lines.err().unwrap_or_default();
                errors.extend(expires_in.err());
                Err(errors.into())
            }
        }
    }
}

/// What a capture takes: everything, or some of the hold's lines.
#[derive(Debug, Clone)]
pub enum Capture {
    All,
    Lines(Lines),
}

impl Capture {
    /// `items` as sent, `None` when absent.
    pub fn parse(items: Option<&[(Uuid, i128)]>) -> Result<Self, AppError> {
        match items {
            None => Ok(Capture::All),
            Some(items) => Ok(Capture::Lines(Lines::parse("items", items)?)),
        }
    }
}

fn count<T>(action: &'static str, done: &'static str, outcome: &Result<Outcome<T>, AppError>) {
    let label = match outcome {
        Ok(Outcome::Fresh(_)) => done,
        Ok(Outcome::Replayed(_)) => "replayed",
        Err(error) => error.code().as_str(),
    };
    metrics::counter!("ontab_holds_total", "action" => action, "outcome" => label).increment(1);
}

pub async fn create(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    once: &Once<'_, Hold>,
    hold: NewHold,
) -> Result<Outcome<Hold>, AppError> {
    let outcome = app
        .run_once(tenant, deadline, once, move |tx| {
            let NewHold {
                customer_id,
                lines,
                expires_in,
            } = hold.clone();
            Box::pin(async move { Ok(holds::create(tx, customer_id, &lines, expires_in).await??) })
        })
        .await;
    count("create", "created", &outcome);
    outcome
}

pub async fn capture(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    once: &Once<'_, Order>,
    hold_id: Uuid,
    capture: Capture,
) -> Result<Outcome<Order>, AppError> {
    let outcome = app
        .run_once(tenant, deadline, once, move |tx| {
            let capture = capture.clone();
            Box::pin(async move {
                let lines = match &capture {
                    Capture::All => None,
                    Capture::Lines(lines) => Some(lines),
                };
                Ok(holds::capture(tx, hold_id, lines).await??)
            })
        })
        .await;
    count("capture", "captured", &outcome);
    outcome
}

/// The voided hold, as whatever record the edge answers it with (a void
/// is answered 200 where a created hold is 201).
pub async fn void<T: From<Hold> + Send + 'static>(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    once: &Once<'_, T>,
    hold_id: Uuid,
) -> Result<Outcome<T>, AppError> {
    let outcome = app
        .run_once(tenant, deadline, once, move |tx| {
            Box::pin(async move { Ok(T::from(holds::void(tx, hold_id).await??)) })
        })
        .await;
    count("void", "voided", &outcome);
    outcome
}

pub async fn get(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
) -> Result<Hold, AppError> {
    app.read(tenant, deadline, move |tx| {
        Box::pin(async move {
            Ok(holds::get(tx, id)
                .await?
                .ok_or_else(|| Refusal::not_found("hold", id))?)
        })
    })
    .await
}

/// Newest first; of one customer, in one status, when given.
pub async fn list(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    customer_id: Option<Uuid>,
    status: Option<HoldStatus>,
    page: Page<CreatedKey>,
) -> Result<Listed<Hold, CreatedKey>, AppError> {
    let rows = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move { Ok(holds::list(tx, customer_id, status, &page).await?) })
        })
        .await?;
    let (rows, next) = page.finish(rows, holds::key);
    Ok(Listed { rows, next })
}

/// Expired holds recorded per round, at most.
const SWEEP_BATCH: u16 = 500;

/// Records the expiry of every hold past its `expires_at`, each in its own
/// transaction of its tenant (one hold's locks at a time, taken in the
/// order purchases take them), then waits `every` and starts over. A hold
/// is recorded at most `every` plus one round's work after it expires;
/// nothing waits for that, since every decision counts an expired hold out
/// on its own. Several instances may sweep at once: each hold's expiry is
/// recorded once (its ending's primary key), the others find it ended.
pub async fn sweep(app: Arc<App>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        loop {
            match sweep_once(&app).await {
                Ok(found) if found == usize::from(SWEEP_BATCH) => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "could not record expired holds");
                    break;
                }
            }
        }
    }
}

/// One round: finds up to a batch of expired holds and records each.
/// Answers how many it found.
pub async fn sweep_once(app: &App) -> Result<usize, AppError> {
    let expired = holds::expired(&app.db, i32::from(SWEEP_BATCH)).await?;
    let actor = Actor::System.recorded();
    for (business_id, hold_id) in &expired {
        let (tx, _) = app.db.begin(*business_id, &[], &actor).await?;
        if let Some(hold) = holds::expire(&tx, *hold_id).await? {
            tx.commit().await?;
            metrics::counter!("ontab_hold_expiries_total").increment(1);
            let late = chrono::Utc::now() - hold.expires_at;
            metrics::histogram!("ontab_hold_expiry_lag_seconds")
                .record(late.num_milliseconds() as f64 / 1000.0);
        }
    }
    Ok(expired.len())
}
