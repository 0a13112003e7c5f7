//! Types and rules with no I/O: what a valid name, amount or order is, and
//! the refusals a use case can answer with.

pub mod api_key;
mod lines;
mod refusal;
mod values;

pub use lines::{Line, Lines, MAX_LINES};
pub use refusal::Refusal;
pub use values::{Currency, Name, NonNegative, Positive, Reason};

/// One invalid field of a request, reported under `errors` in a 422.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
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
