//! Running a money- or stock-moving use case at most once per
//! Idempotency-Key.
//!
//! The stored outcome is what the edge answered (a status and a body,
//! produced by a mapping the edge supplies, [`Render`]), written in the
//! transaction of the effect, so they commit together or not at all. A
//! concurrent duplicate blocks on the key's unique index until the first
//! commits, then rolls back its own effect and runs again, which replays
//! the first answer (`db::idempotency::store_many`).

use crate::db::TenantTx;
use crate::db::idempotency::{self, StoredOutcome};
use crate::domain::IdempotencyKey;

use super::transaction::{
    CommitGate, MAX_ATTEMPTS, Repeatable, Step, commit, count_retry, deadline_passed,
};
use super::{App, AppError, Deadline, Tenant};

/// An answer as the edge sent it, stored for replays.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: serde_json::Value,
}

/// How the edge answers a result: `None` for an answer that is not
/// definitive (unavailable, internal), which is never stored.
pub type Render<T> = fn(&Result<T, AppError>) -> Option<StoredAnswer>;

/// What makes a request "the same" under a key, and how its answer is kept.
pub struct Once<'a, T> {
    pub key: Option<&'a IdempotencyKey>,
    /// The edge's digest of the request (route and canonical body).
    pub fingerprint: &'a [u8],
    pub render: Render<T>,
}

/// A use case's result: done now, or the replay of an earlier answer.
#[derive(Debug)]
pub enum Outcome<T> {
    Fresh(T),
    Replayed(StoredAnswer),
}

impl<T> Outcome<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Fresh(value) => Outcome::Fresh(f(value)),
            Outcome::Replayed(answer) => Outcome::Replayed(answer),
        }
    }
}

impl App {
    /// Runs `work` for `tenant`; with a key, at most once: a repeat with the
    /// same fingerprint replays the first definitive answer, a repeat with
    /// another is `AppError::IdempotencyKeyReused`.
    pub(crate) async fn run_once<T>(
        &self,
        tenant: &Tenant,
        deadline: Deadline,
        once: &Once<'_, T>,
        work: impl Repeatable<T>,
    ) -> Result<Outcome<T>, AppError> {
        self.run_once_gated(tenant, deadline, &deadline, once, work)
            .await
    }

    /// `run_once` with a commit gate of the caller's.
    pub(crate) async fn run_once_gated<T>(
        &self,
        tenant: &Tenant,
        deadline: Deadline,
        gate: &dyn CommitGate,
        once: &Once<'_, T>,
        work: impl Repeatable<T>,
    ) -> Result<Outcome<T>, AppError> {
        let mut attempt = 1;
        loop {
            let ready =
                tokio::time::timeout_at(deadline.instant(), self.attempt(tenant, once, &work))
                    .await;
            let outcome = match ready {
                Err(_) => return Err(deadline_passed()),
                Ok(Ok(Attempt::Replay(answer))) => return Ok(Outcome::Replayed(answer)),
                Ok(Ok(Attempt::Decided(tx, result))) => commit(*tx, gate).await.map(|()| result),
                Ok(Err(step)) => Err(step),
            };
            match outcome {
                Ok(result) => return result.map(Outcome::Fresh),
                Err(Step::Db(error))
                    if error.is_retryable() && attempt < MAX_ATTEMPTS && !deadline.passed() =>
                {
                    count_retry(&error);
                    attempt += 1;
                }
                Err(step) => return Err(step.into()),
            }
        }
    }

    /// Records a refusal decided before any work could run (a malformed
    /// body): with a key, the same request is answered the same way again,
    /// and the key cannot be reused for another.
    pub async fn refuse_once<T>(
        &self,
        tenant: &Tenant,
        deadline: Deadline,
        once: &Once<'_, T>,
        error: AppError,
    ) -> Result<Outcome<T>, AppError> {
        if once.key.is_none() {
            return Err(error);
        }
        self.run_once(tenant, deadline, once, move |_| {
            let error = error.clone();
            Box::pin(async move { Err(error.into()) })
        })
        .await
    }

    async fn attempt<T>(
        &self,
        tenant: &Tenant,
        once: &Once<'_, T>,
        work: &impl Repeatable<T>,
    ) -> Result<Attempt<T>, Step> {
        // Beginning checks the API key is still live, before any stored
        // outcome is read: a revoked key gets 401, never a replay.
        let tx = self.begin(tenant).await?;
        let Some(key) = once.key else {
            return match work(&tx).await {
                Ok(value) => Ok(Attempt::Decided(Box::new(tx), Ok(value))),
                // A refusal wrote nothing: nothing to commit.
                Err(step) => Err(step),
            };
        };
        if let Some(stored) = idempotency::find(&tx, key.as_str()).await? {
            if stored.fingerprint != once.fingerprint {
                return Err(AppError::IdempotencyKeyReused.into());
            }
            return Ok(Attempt::Replay(StoredAnswer {
                status: stored.status,
                body: stored.body,
            }));
        }
        let result = match work(&tx).await {
            Ok(value) => Ok(value),
            Err(Step::App(error)) => Err(error),
            Err(db) => return Err(db),
        };
        // A definitive refusal wrote nothing (use cases refuse before they
        // write), so it is recorded and committed like a success.
        let Some(answer) = (once.render)(&result) else {
            // Not definitive (nothing to store), or an edge that declined to
            // store a success, which would let a retry run it again.
            return Err(Step::App(result.err().unwrap_or_else(|| {
                AppError::Internal("a success was not rendered for storing".into())
            })));
        };
        let outcome = StoredOutcome {
            fingerprint: once.fingerprint.to_vec(),
            status: answer.status,
            body: answer.body,
        };
        idempotency::store_many(&tx, &[(key.as_str(), &outcome)]).await?;
        Ok(Attempt::Decided(Box::new(tx), result))
    }
}

enum Attempt<T> {
    Replay(StoredAnswer),
    /// Boxed: the transaction is large, and a replay needs none.
    Decided(Box<TenantTx>, Result<T, AppError>),
}
