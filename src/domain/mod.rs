//! Types and rules with no I/O: what a valid name, amount or order line is,
//! the records the service keeps, and the refusals and error codes of the
//! contract. Depends on nothing of ours, and on no edge crate (no utoipa,
//! no clap, no axum): schemas and flags belong to the edges.

pub mod api_key;
mod codes;
pub mod events;
mod lines;
pub mod records;
mod refusal;
pub(crate) mod time;
mod values;
pub mod webhook;

pub use codes::ErrorCode;
pub use lines::{Line, Lines, MAX_LINES};
pub use refusal::Refusal;
pub use values::{
    AccountStatus, Currency, Delta, IdempotencyKey, MAX_SAFE_INTEGER, Name, NonNegative,
    PaymentTerms, Positive, Reason,
};

/// One invalid field of a request, reported under `errors` in a 422.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Collects field errors so that a 422 reports every invalid field at once.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// Keeps the value if it parsed, remembers the error if not.
    pub fn check<T>(&mut self, parsed: Result<T, FieldError>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(error);
                None
            }
        }
    }

    /// Checks an optional value: `Ok(None)` when absent.
    pub fn check_optional<T, R>(
        &mut self,
        raw: Option<R>,
        parse: impl FnOnce(R) -> Result<T, FieldError>,
    ) -> Option<Option<T>> {
        match raw {
            None => Some(None),
            Some(raw) => self.check(parse(raw)).map(Some),
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// `Ok(value)` when no check failed, every error otherwise. `build` sees
    /// only values whose checks passed, so it returns `Some`.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Vec<FieldError>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        build().ok_or_else(|| vec![FieldError::new("", "invalid request")])
    }
}
