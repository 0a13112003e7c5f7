//! Database failures, sorted by what the caller can do about them.

use tokio_postgres::error::SqlState;

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached, the pool is exhausted, or a statement
    /// was cancelled: nothing was written; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Serialization failure or deadlock: nothing was written, run it again.
    #[error("transaction conflict: {}", describe(.0))]
    Conflict(tokio_postgres::Error),
    /// A concurrent request with the same Idempotency-Key committed first.
    #[error("a concurrent request with the same Idempotency-Key committed first")]
    IdempotencyRace,
    /// The API key acting was revoked (or is gone) since it was
    /// authenticated: the work must not run.
    #[error("the API key was revoked")]
    KeyRevoked,
    /// COMMIT was sent but its answer never came (the connection broke):
    /// the transaction may or may not have committed.
    #[error("the outcome of COMMIT is unknown: {0}")]
    CommitOutcomeUnknown(String),
    /// A bad connection string or pool setting, found before any query ran.
    #[error("{0}")]
    Config(String),
    /// A guard fired or a query is wrong: a bug in ontab, never the client's.
    #[error("database error: {}", describe(.0))]
    Query(tokio_postgres::Error),
    /// The database answered something ontab does not understand (a column
    /// of another type, a function's answer of another shape).
    #[error("unexpected database answer: {0}")]
    Decode(String),
}

/// What PostgreSQL said (tokio-postgres' own Display is just "db error").
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str("; detail: ");
                text.push_str(detail);
            }
            if let Some(constraint) = db.constraint() {
                text.push_str("; constraint: ");
                text.push_str(constraint);
            }
            if let Some(location) = db.where_() {
                text.push_str("; where: ");
                text.push_str(location);
            }
            text
        }
        // Display alone is e.g. "error performing TLS handshake": the why
        // is in the sources.
        None => std::iter::successors(std::error::Error::source(error), |cause| cause.source())
            .fold(error.to_string(), |text, cause| format!("{text}: {cause}")),
    }
}

impl DbError {
    /// Whether the same work may simply run again: nothing was written.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DbError::Conflict(_) | DbError::IdempotencyRace)
    }

    /// Why it may run again, as a metrics label.
    pub fn retry_reason(&self) -> &'static str {
        match self {
            DbError::Conflict(error) if error.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) => {
                "deadlock"
            }
            DbError::Conflict(_) => "serialization_failure",
            DbError::IdempotencyRace => "idempotency_race",
            _ => "none",
        }
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        let Some(code) = error.code() else {
            // No SQLSTATE: the connection broke or could not be made.
            return DbError::Unavailable(describe(&error));
        };
        if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            DbError::Conflict(error)
        } else if code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::QUERY_CANCELED
        {
            DbError::Unavailable(describe(&error))
        } else {
            DbError::Query(error)
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => error.into(),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}
