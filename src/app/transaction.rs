//! Running a use case's work in a tenant transaction: the key checked as
//! the transaction begins, conflicts retried, the deadline enforced up to
//! COMMIT and not after.
//!
//! Why the deadline stops at COMMIT: once COMMIT is sent, PostgreSQL commits
//! whatever happens to the request. Answering "unavailable, nothing written"
//! then would be a lie that makes a client pay twice. So work is bounded by
//! the deadline, and a request whose COMMIT is in flight waits for its
//! answer; if the connection breaks before it comes, the answer is
//! "outcome unknown" (`AppError::OutcomeUnknown`), never "nothing written".

use std::future::Future;
use std::pin::Pin;

use crate::db::{DbError, TenantTx};
use crate::domain::{FieldError, Refusal};

use super::{Actor, App, AppError, Deadline, Tenant};

/// Attempts of work that failed on a serialization failure, a deadlock or
/// an idempotency race (each means: nothing was written, run it again).
pub(crate) const MAX_ATTEMPTS: u32 = 4;

/// How one step of a use case's work can fail: with an answer for the
/// client, or with a database error the runner may retry.
#[derive(Debug)]
pub enum Step {
    App(AppError),
    Db(DbError),
}

impl From<AppError> for Step {
    fn from(error: AppError) -> Self {
        Step::App(error)
    }
}

impl From<DbError> for Step {
    fn from(error: DbError) -> Self {
        Step::Db(error)
    }
}

impl From<Refusal> for Step {
    fn from(refusal: Refusal) -> Self {
        Step::App(refusal.into())
    }
}

impl From<Vec<FieldError>> for Step {
    fn from(errors: Vec<FieldError>) -> Self {
        Step::App(errors.into())
    }
}

impl From<FieldError> for Step {
    fn from(error: FieldError) -> Self {
        Step::App(error.into())
    }
}

impl From<Step> for AppError {
    fn from(step: Step) -> Self {
        match step {
            Step::App(error) => error,
            Step::Db(error) => error.into(),
        }
    }
}

/// A use case's work inside its transaction. Boxed so that the runner's
/// future stays `Send` whatever the work borrows from the transaction (an
/// async closure taking `&TenantTx` cannot promise that today).
pub type Work<'t, T> = Pin<Box<dyn Future<Output = Result<T, Step>> + Send + 't>>;

/// Work that may run more than once (retries): it owns what it needs, or
/// clones it into each attempt, and borrows only the transaction.
pub trait Repeatable<T>: for<'t> Fn(&'t TenantTx) -> Work<'t, T> + Send + Sync {}

impl<T, F> Repeatable<T> for F where F: for<'t> Fn(&'t TenantTx) -> Work<'t, T> + Send + Sync {}

/// Whether work that is ready may send COMMIT. The plain gate is the
/// request's deadline; a group-committed purchase's gate also checks that
/// its request has not given up meanwhile.
pub(crate) trait CommitGate: Sync {
    fn enter_commit(&self) -> bool;
}

impl CommitGate for Deadline {
    fn enter_commit(&self) -> bool {
        !self.passed()
    }
}

pub(crate) fn deadline_passed() -> AppError {
    AppError::Unavailable(
        "the request's deadline passed before its work could commit; nothing was written".into(),
    )
}

pub(crate) fn count_retry(error: &DbError) {
    metrics::counter!("ontab_db_transaction_retries_total", "reason" => error.retry_reason())
        .increment(1);
}

impl App {
    /// Opens `tenant`'s transaction; a key revoked since it was
    /// authenticated is refused (and forgotten by the cache).
    pub(crate) async fn begin(&self, tenant: &Tenant) -> Result<TenantTx, Step> {
        let actor = Actor::ApiKey(tenant.key_id).recorded();
        let (tx, revoked) = self
            .db
            .begin(tenant.business_id, &[tenant.key_id], &actor)
            .await?;
        if revoked.is_empty() {
            Ok(tx)
        } else {
            self.keys.forget(&tenant.key_id);
            Err(DbError::KeyRevoked.into())
        }
    }

    /// Work that only reads: bounded by the deadline as a whole.
    pub(crate) async fn read<T>(
        &self,
        tenant: &Tenant,
        deadline: Deadline,
        work: impl for<'t> FnOnce(&'t TenantTx) -> Work<'t, T> + Send,
    ) -> Result<T, AppError> {
        let run = async {
            let tx = self.begin(tenant).await?;
            let value = work(&tx).await?;
            tx.commit().await?;
            Ok::<T, Step>(value)
        };
        match tokio::time::timeout_at(deadline.instant(), run).await {
            Ok(result) => result.map_err(AppError::from),
            Err(_) => Err(deadline_passed()),
        }
    }

    /// Work that writes, committed unless it fails; retried while
    /// PostgreSQL says nothing was written and time remains.
    pub(crate) async fn write<T>(
        &self,
        tenant: &Tenant,
        deadline: Deadline,
        work: impl Repeatable<T>,
    ) -> Result<T, AppError> {
        let mut attempt = 1;
        loop {
            let ready = tokio::time::timeout_at(deadline.instant(), async {
                let tx = self.begin(tenant).await?;
                let value = work(&tx).await?;
                Ok::<_, Step>((tx, value))
            })
            .await;
            let outcome = match ready {
                Err(_) => return Err(deadline_passed()),
                Ok(Ok((tx, value))) => commit(tx, &deadline).await.map(|()| value),
                Ok(Err(step)) => Err(step),
            };
            match outcome {
                Err(Step::Db(error))
                    if error.is_retryable() && attempt < MAX_ATTEMPTS && !deadline.passed() =>
                {
                    count_retry(&error);
                    attempt += 1;
                }
                other => return other.map_err(AppError::from),
            }
        }
    }
}

/// Sends COMMIT if the gate allows it, then waits for the answer whatever
/// the time. Dropping `tx` instead rolls it back.
pub(crate) async fn commit(tx: TenantTx, gate: &dyn CommitGate) -> Result<(), Step> {
    if !gate.enter_commit() {
        drop(tx);
        return Err(deadline_passed().into());
    }
    tx.commit().await.map_err(Step::from)
}
