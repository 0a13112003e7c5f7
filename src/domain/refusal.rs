//! Refusals: the expected "no" answers of the use cases (the 404s and 409s
//! of the contract), with the facts a client needs to act on them.

use serde::Deserialize;
use uuid::Uuid;

use super::{ErrorCode, FieldError};

/// Why a use case wrote nothing. The database functions return these as
/// `{"error": "<code>", ...facts}` rather than raising, so the transaction
/// can still record the outcome for an Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum Refusal {
    /// `id` as the client gave it (a path segment need not be a UUID to
    /// name nothing).
    NotFound {
        resource: String,
        id: String,
    },
    InsufficientStock {
        product_id: Uuid,
        requested: i64,
        available: i64,
    },
    /// `held`: what the customer's pending holds reserve, which counts
    /// against the limit too.
    CreditLimitExceeded {
        credit_limit: i64,
        balance: i64,
        #[serde(default)]
        held: i64,
        order_total: i64,
    },
    PaymentExceedsBalance {
        balance: i64,
        amount: i64,
    },
    ReturnExceedsPurchase {
        product_id: Uuid,
        returnable: i64,
    },
    /// The customer is on hold: it may pay, return and be written off, but
    /// not buy.
    CustomerOnHold {
        customer_id: Uuid,
    },
    /// The customer is closed: nothing moves for it again.
    CustomerClosed {
        customer_id: Uuid,
    },
    /// A customer is closed only from a zero balance.
    BalanceOutstanding {
        balance: i64,
    },
    WriteOffExceedsBalance {
        balance: i64,
        amount: i64,
    },
    /// Capture or void of a hold that has ended (or expired): `status` says
    /// how.
    HoldNotPending {
        status: String,
    },
    /// A capture of more of a product than the hold holds (0: not held).
    CaptureExceedsHold {
        product_id: Uuid,
        held: i64,
    },
    /// A value that is only invalid given what is stored, such as an order
    /// total beyond what a JSON client can read exactly.
    ValidationFailed {
        field: String,
        message: String,
    },
}

impl Refusal {
    /// A refusal for an id this business does not have.
    pub fn not_found(resource: &str, id: impl std::fmt::Display) -> Self {
        Refusal::NotFound {
            resource: resource.to_owned(),
            id: id.to_string(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::NotFound { .. } => ErrorCode::NotFound,
            Refusal::InsufficientStock { .. } => ErrorCode::InsufficientStock,
            Refusal::CreditLimitExceeded { .. } => ErrorCode::CreditLimitExceeded,
            Refusal::PaymentExceedsBalance { .. } => ErrorCode::PaymentExceedsBalance,
            Refusal::ReturnExceedsPurchase { .. } => ErrorCode::ReturnExceedsPurchase,
            Refusal::CustomerOnHold { .. } => ErrorCode::CustomerOnHold,
            Refusal::CustomerClosed { .. } => ErrorCode::CustomerClosed,
            Refusal::BalanceOutstanding { .. } => ErrorCode::BalanceOutstanding,
            Refusal::WriteOffExceedsBalance { .. } => ErrorCode::WriteOffExceedsBalance,
            Refusal::HoldNotPending { .. } => ErrorCode::HoldNotPending,
            Refusal::CaptureExceedsHold { .. } => ErrorCode::CaptureExceedsHold,
            Refusal::ValidationFailed { .. } => ErrorCode::ValidationFailed,
        }
    }

    /// A validation refusal as the field errors of a 422.
    pub fn field_errors(&self) -> Option<Vec<FieldError>> {
        match self {
            Refusal::ValidationFailed { field, message } => {
                Some(vec![FieldError::new(field.clone(), message.clone())])
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_parse_from_the_database_shape() {
        let raw = serde_json::json!({
            "error": "credit_limit_exceeded", "credit_limit": 100, "balance": 90, "held": 5,
            "order_total": 20
        });
        let refusal: Refusal = serde_json::from_value(raw).expect("known refusal");
        assert_eq!(
            refusal,
            Refusal::CreditLimitExceeded {
                credit_limit: 100,
                balance: 90,
                held: 5,
                order_total: 20
            }
        );
        assert_eq!(refusal.code(), ErrorCode::CreditLimitExceeded);
    }
}
