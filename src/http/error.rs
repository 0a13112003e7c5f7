//! Every error the API can answer, mapped to problem+json (RFC 9457) here and
//! nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::db::{DbError, Retryable};
use crate::domain::{FieldError, Refusal};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The detail of every refused API key, whatever the reason: unknown id,
/// wrong secret, revoked.
pub const INVALID_API_KEY: &str = "invalid API key";

/// An error answer of the API; `code` in the body is one of the contract's.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("request timed out")]
    Timeout,
    #[error(transparent)]
    Database(DbError),
}

impl From<DbError> for ApiError {
    /// A key revoked between authentication and its transaction gets the
    /// same answer as any invalid key.
    fn from(error: DbError) -> Self {
        match error {
            DbError::KeyRevoked => ApiError::Unauthorized(INVALID_API_KEY),
            other => ApiError::Database(other),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal.field_errors() {
            Some(errors) => ApiError::Validation(errors),
            None => ApiError::Refused(refusal),
        }
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        ApiError::Validation(errors)
    }
}

impl Retryable for ApiError {
    fn is_retryable(&self) -> bool {
        matches!(self, ApiError::Database(error) if error.is_retryable())
    }

    fn retry_reason(&self) -> &'static str {
        match self {
            ApiError::Database(error) => error.retry_reason(),
            _ => "none",
        }
    }
}

impl ApiError {
    /// 4xx answers are definitive (stored for Idempotency-Key replays);
    /// 5xx and 503 are not, so the client may retry them.
    pub fn is_definitive(&self) -> bool {
        self.status().is_client_error()
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Refused(Refusal::NotFound { .. }) => StatusCode::NOT_FOUND,
            ApiError::Refused(Refusal::ValidationFailed { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Refused(_) | ApiError::IdempotencyKeyReused => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(DbError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            // Retries ran out: still nothing was written, and it is safe to retry.
            ApiError::Database(DbError::Conflict(_) | DbError::IdempotencyRace) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `code` of the contract.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Malformed(_) => "malformed_request",
            ApiError::Validation(_) => "validation_failed",
            ApiError::NotFound(_) => "not_found",
            ApiError::Refused(refusal) => match refusal {
                Refusal::NotFound { .. } => "not_found",
                Refusal::InsufficientStock { .. } => "insufficient_stock",
                Refusal::CreditLimitExceeded { .. } => "credit_limit_exceeded",
                Refusal::PaymentExceedsBalance { .. } => "payment_exceeds_balance",
                Refusal::ReturnExceedsPurchase { .. } => "return_exceeds_purchase",
                Refusal::ValidationFailed { .. } => "validation_failed",
            },
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Timeout => "unavailable",
            ApiError::Database(_) => match self.status() {
                StatusCode::SERVICE_UNAVAILABLE => "unavailable",
                _ => "internal",
            },
        }
    }

    fn title(&self) -> &'static str {
        match self.code() {
            "unauthorized" => "Missing or invalid credentials",
            "malformed_request" => "Malformed request",
            "validation_failed" => "Invalid values",
            "not_found" => "Not found",
            "insufficient_stock" => "Insufficient stock",
            "credit_limit_exceeded" => "Credit limit exceeded",
            "payment_exceeds_balance" => "Payment exceeds balance",
            "return_exceeds_purchase" => "Return exceeds purchase",
            "idempotency_key_reused" => "Idempotency key reused",
            "payload_too_large" => "Payload too large",
            "unavailable" => "Service unavailable",
            _ => "Internal error",
        }
    }

    fn detail_and_members(&self) -> (String, Value) {
        match self {
            ApiError::Unauthorized(why) => ((*why).to_owned(), json!({})),
            ApiError::Malformed(why) => (why.clone(), json!({})),
            ApiError::Validation(errors) => (
                "one or more fields are invalid".to_owned(),
                json!({ "errors": errors }),
            ),
            ApiError::NotFound(what) => (what.clone(), json!({})),
            ApiError::Refused(refusal) => refusal_detail(refusal),
            ApiError::IdempotencyKeyReused => (
                "this Idempotency-Key was already used with a different request".to_owned(),
                json!({}),
            ),
            ApiError::PayloadTooLarge => (
                "the request body is over the size limit".to_owned(),
                json!({}),
            ),
            ApiError::Timeout => (
                "the request took too long; it is safe to retry".to_owned(),
                json!({}),
            ),
            ApiError::Database(error) => match self.status() {
                StatusCode::SERVICE_UNAVAILABLE => {
                    tracing::warn!(%error, "database unavailable");
                    (
                        "the database is unavailable; it is safe to retry".to_owned(),
                        json!({}),
                    )
                }
                _ => {
                    // The detail goes to the log only: SQL and internals
                    // never reach a client.
                    tracing::error!(%error, "internal error");
                    ("an unexpected error occurred".to_owned(), json!({}))
                }
            },
        }
    }

    /// The problem document, as stored for replays and sent to clients.
    pub fn body(&self) -> Value {
        let (detail, members) = self.detail_and_members();
        let mut body = json!({
            "type": format!("urn:ontab:problem:{}", self.code()),
            "title": self.title(),
            "status": self.status().as_u16(),
            "detail": detail,
            "code": self.code(),
        });
        if let (Some(body), Value::Object(members)) = (body.as_object_mut(), members) {
            body.extend(members);
        }
        body
    }
}

fn refusal_detail(refusal: &Refusal) -> (String, Value) {
    match refusal {
        Refusal::NotFound { resource, id } => (format!("{resource} {id} not found"), json!({})),
        Refusal::InsufficientStock {
            product_id,
            requested,
            available,
        } => (
            format!("product {product_id}: {requested} requested, {available} in stock"),
            json!({ "product_id": product_id, "requested": requested, "available": available }),
        ),
        Refusal::CreditLimitExceeded {
            credit_limit,
            balance,
            order_total,
        } => (
            format!(
                "balance {balance} + order {order_total} would exceed the credit limit {credit_limit}"
            ),
            json!({ "credit_limit": credit_limit, "balance": balance, "order_total": order_total }),
        ),
        Refusal::PaymentExceedsBalance { balance, amount } => (
            format!("payment {amount} is more than the outstanding balance {balance}"),
            json!({ "balance": balance, "amount": amount }),
        ),
        Refusal::ReturnExceedsPurchase {
            product_id,
            returnable,
        } => (
            format!(
                "product {product_id}: only {returnable} can still be returned from this order"
            ),
            json!({ "product_id": product_id, "returnable": returnable }),
        ),
        Refusal::ValidationFailed { field, message } => (
            format!("{field}: {message}"),
            json!({ "errors": [{ "field": field, "message": message }] }),
        ),
    }
}

/// A JSON answer with the given status, problem+json for errors.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if status.is_client_error() || status.is_server_error() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status(), &self.body());
        if let ApiError::Unauthorized(_) = self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
