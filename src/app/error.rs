//! What a use case can answer besides its result. The HTTP edge maps these
//! to problem+json in one place (`http::problem`); the CLI prints them.

use crate::db::DbError;
use crate::domain::{ErrorCode, FieldError, Refusal};

/// Why a use case did not produce its result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// Missing, unknown, wrong or revoked credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// The request could not be read as the use case's input.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Well-formed, but some fields are invalid: every one is listed.
    #[error("validation failed: {0:?}")]
    Invalid(Vec<FieldError>),
    /// An expected "no" with its facts: not found, out of stock, over the
    /// limit…  Nothing was written.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// The Idempotency-Key was first used for a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// Nothing was written and the same request may be sent again: the
    /// database is unreachable or overloaded, or the deadline passed before
    /// the work could commit.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The commit was sent and its answer lost: the work may or may not
    /// have been done. Only a replay of the same Idempotency-Key tells.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// A bug in ontab or its database; the detail is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// The contract's code for this answer.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Unauthorized(_) => ErrorCode::Unauthorized,
            AppError::Malformed(_) => ErrorCode::MalformedRequest,
            AppError::Invalid(_) => ErrorCode::ValidationFailed,
            AppError::Refused(refusal) => refusal.code(),
            AppError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::OutcomeUnknown(_) | AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// A definitive answer: the request as sent will never succeed, so it
    /// is recorded under its Idempotency-Key and replayed. Anything else
    /// (unavailable, unknown, internal) may go otherwise next time.
    pub fn is_definitive(&self) -> bool {
        !matches!(
            self,
            AppError::Unavailable(_) | AppError::OutcomeUnknown(_) | AppError::Internal(_)
        )
    }
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        match refusal.field_errors() {
            Some(errors) => AppError::Invalid(errors),
            None => AppError::Refused(refusal),
        }
    }
}

impl From<Vec<FieldError>> for AppError {
    fn from(errors: Vec<FieldError>) -> Self {
        AppError::Invalid(errors)
    }
}

impl From<FieldError> for AppError {
    fn from(error: FieldError) -> Self {
        AppError::Invalid(vec![error])
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::KeyRevoked => AppError::Unauthorized(INVALID_API_KEY),
            // Retries ran out on these: still nothing was written.
            DbError::Unavailable(_) | DbError::Conflict(_) | DbError::IdempotencyRace => {
                AppError::Unavailable(error.to_string())
            }
            DbError::CommitOutcomeUnknown(_) => AppError::OutcomeUnknown(error.to_string()),
            DbError::Config(_) | DbError::Query(_) | DbError::Decode(_) => {
                AppError::Internal(error.to_string())
            }
        }
    }
}

/// The detail of every refused API key, whatever the reason: unknown id,
/// wrong secret, revoked.
pub const INVALID_API_KEY: &str = "invalid API key";
