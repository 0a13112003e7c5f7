//! The stable error codes of the contract: a client branches on these, so
//! they never change once published.

use serde::Serialize;

/// Every `code` a problem answer can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MalformedRequest,
    ValidationFailed,
    Unauthorized,
    NotFound,
    InsufficientStock,
    CreditLimitExceeded,
    PaymentExceedsBalance,
    ReturnExceedsPurchase,
    CustomerOnHold,
    CustomerClosed,
    BalanceOutstanding,
    WriteOffExceedsBalance,
    HoldNotPending,
    CaptureExceedsHold,
    IdempotencyKeyReused,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, refusals in the contract's order of precedence (the
    /// first a request fails is the one reported).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Unauthorized,
        ErrorCode::MalformedRequest,
        ErrorCode::ValidationFailed,
        ErrorCode::NotFound,
        ErrorCode::CustomerClosed,
        ErrorCode::CustomerOnHold,
        ErrorCode::HoldNotPending,
        ErrorCode::InsufficientStock,
        ErrorCode::CreditLimitExceeded,
        ErrorCode::PaymentExceedsBalance,
        ErrorCode::WriteOffExceedsBalance,
        ErrorCode::ReturnExceedsPurchase,
        ErrorCode::CaptureExceedsHold,
        ErrorCode::BalanceOutstanding,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InsufficientStock => "insufficient_stock",
            ErrorCode::CreditLimitExceeded => "credit_limit_exceeded",
            ErrorCode::PaymentExceedsBalance => "payment_exceeds_balance",
            ErrorCode::ReturnExceedsPurchase => "return_exceeds_purchase",
            ErrorCode::CustomerOnHold => "customer_on_hold",
            ErrorCode::CustomerClosed => "customer_closed",
            ErrorCode::BalanceOutstanding => "balance_outstanding",
            ErrorCode::WriteOffExceedsBalance => "write_off_exceeds_balance",
            ErrorCode::HoldNotPending => "hold_not_pending",
            ErrorCode::CaptureExceedsHold => "capture_exceeds_hold",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serializes_as_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).ok(),
                Some(serde_json::Value::from(code.as_str()))
            );
        }
    }
}
