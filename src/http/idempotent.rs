//! Running a money- or stock-moving use case at most once per
//! Idempotency-Key, retrying transparently when PostgreSQL says "nothing
//! was written, try again".
//!
//! The stored outcome is written in the transaction of the effect, so they
//! commit together or not at all. A concurrent duplicate blocks on the key's
//! unique index until the first commits, then rolls back its own effect and
//! runs again, which replays the first answer (see `db::idempotency::store`).

use std::future::Future;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::ApiError;
use super::auth::Tenant;
use super::error::json_response;
use crate::db::idempotency::{self, StoredOutcome};
use crate::db::{Db, DbError, Retryable, TenantTx};

/// Attempts of a use case that failed on a serialization failure, a
/// deadlock or an idempotency race.
const MAX_ATTEMPTS: u32 = 4;

/// What a use case answers: status and JSON body.
pub type Answer = (StatusCode, Value);

/// A use case that moves money or stock. It must refuse before it writes,
/// and touch the database only through the transaction it is given, so
/// running it again after a rollback is safe.
pub trait Command: Sync {
    /// Route template and path, e.g. `POST /v1/purchases`: part of what
    /// makes two requests "the same" for an Idempotency-Key.
    fn route(&self) -> String;

    fn execute<'a>(
        &'a self,
        tx: &'a TenantTx,
    ) -> impl Future<Output = Result<Answer, ApiError>> + Send + 'a;
}

/// Runs `command` for `tenant`; with a key, at most once: a repeat with the
/// same fingerprint replays the first definitive answer, a repeat with
/// another is `409 idempotency_key_reused`.
pub async fn run_once(
    db: &Db,
    tenant: &Tenant,
    key: Option<String>,
    fingerprint: Vec<u8>,
    command: &impl Command,
) -> Result<Response, ApiError> {
    reply_response(run_once_raw(db, tenant, key, fingerprint, command).await)
}

/// A use case's answer before it becomes a response: status, body, and
/// whether it replays a stored outcome.
pub type Reply = Result<(StatusCode, Value, bool), ApiError>;

/// `run_once`, answering the parts of the response.
pub async fn run_once_raw(
    db: &Db,
    tenant: &Tenant,
    key: Option<String>,
    fingerprint: Vec<u8>,
    command: &impl Command,
) -> Reply {
    let mut attempt = 1;
    loop {
        match attempt_once(db, tenant, key.as_deref(), &fingerprint, command).await {
            Err(error) if error.is_retryable() && attempt < MAX_ATTEMPTS => {
                tracing::debug!(attempt, %error, "retrying after a transaction conflict");
                metrics::counter!("ontab_db_transaction_retries_total", "reason" => error.retry_reason())
                    .increment(1);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The response for a reply, marking replays.
pub fn reply_response(reply: Reply) -> Result<Response, ApiError> {
    let (status, body, replayed) = reply?;
    let mut response = json_response(status, &body);
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn attempt_once(
    db: &Db,
    tenant: &Tenant,
    key: Option<&str>,
    fingerprint: &[u8],
    command: &impl Command,
) -> Result<(StatusCode, Value, bool), ApiError> {
    // Beginning checks the API key is still live, before any stored outcome
    // is read: a revoked key gets 401, never a replay.
    let tx = db.begin(tenant.business_id, tenant.key_id).await?;
    let Some(key) = key else {
        let (status, body) = command.execute(&tx).await?;
        tx.commit().await?;
        return Ok((status, body, false));
    };
    if let Some(stored) = idempotency::find(&tx, key).await? {
        if stored.fingerprint != fingerprint {
            return Err(ApiError::IdempotencyKeyReused);
        }
        let status = StatusCode::from_u16(stored.status)
            .map_err(|_| DbError::Decode(format!("stored status {}", stored.status)))?;
        return Ok((status, stored.body, true));
    }
    // A definitive refusal wrote nothing (use cases refuse before they
    // write), so it is recorded and committed like a success.
    let (status, body) = match command.execute(&tx).await {
        Ok(answer) => answer,
        Err(error) if error.is_definitive() => (error.status(), error.body()),
        Err(error) => return Err(error),
    };
    let outcome = StoredOutcome {
        fingerprint: fingerprint.to_vec(),
        status: status.as_u16(),
        body,
    };
    idempotency::store(&tx, key, &outcome).await?;
    tx.commit().await?;
    Ok((status, outcome.body, false))
}
