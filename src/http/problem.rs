//! Every error answer of the API, as problem+json (RFC 9457), built here
//! and nowhere else: the use cases' [`AppError`]s and the edge's own
//! (payload too large, unknown route) map to one [`Problem`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::app::AppError;
use crate::domain::{ErrorCode, Refusal};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The members of every problem, in RFC 9457 and the contract.
const STANDARD_MEMBERS: [&str; 5] = ["type", "title", "status", "detail", "code"];

/// A problem document: the body sent, and (`http::openapi`) its schema.
/// Boxed: handlers return it as their error, and most answers are not one.
#[derive(Debug, Clone, Serialize)]
pub struct Problem(Box<Body>);

#[derive(Debug, Clone, Serialize)]
struct Body {
    /// `urn:ontab:problem:<code>`.
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: String,
    code: ErrorCode,
    /// The facts of this code (e.g. `available` for insufficient_stock).
    #[serde(flatten)]
    members: Map<String, Value>,
    /// What went wrong inside, for the log only (never sent).
    #[serde(skip)]
    internal: Option<String>,
}

/// The HTTP status of each code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::MalformedRequest => StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::InsufficientStock
        | ErrorCode::CreditLimitExceeded
        | ErrorCode::PaymentExceedsBalance
        | ErrorCode::ReturnExceedsPurchase
        | ErrorCode::CustomerOnHold
        | ErrorCode::CustomerClosed
        | ErrorCode::BalanceOutstanding
        | ErrorCode::WriteOffExceedsBalance
        | ErrorCode::HoldNotPending
        | ErrorCode::CaptureExceedsHold
        | ErrorCode::IdempotencyKeyReused => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The short, stable title of each code.
pub fn title_of(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::MalformedRequest => "Malformed request",
        ErrorCode::ValidationFailed => "Invalid values",
        ErrorCode::Unauthorized => "Missing or invalid credentials",
        ErrorCode::NotFound => "Not found",
        ErrorCode::InsufficientStock => "Insufficient stock",
        ErrorCode::CreditLimitExceeded => "Credit limit exceeded",
        ErrorCode::PaymentExceedsBalance => "Payment exceeds balance",
        ErrorCode::ReturnExceedsPurchase => "Return exceeds purchase",
        ErrorCode::CustomerOnHold => "Customer on hold",
        ErrorCode::CustomerClosed => "Customer closed",
        ErrorCode::BalanceOutstanding => "Balance outstanding",
        ErrorCode::WriteOffExceedsBalance => "Write-off exceeds balance",
        ErrorCode::HoldNotPending => "Hold not pending",
        ErrorCode::CaptureExceedsHold => "Capture exceeds hold",
        ErrorCode::IdempotencyKeyReused => "Idempotency key reused",
        ErrorCode::PayloadTooLarge => "Payload too large",
        ErrorCode::Unavailable => "Service unavailable",
        ErrorCode::Internal => "Internal error",
    }
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self(Box::new(Body {
            type_uri: format!("urn:ontab:problem:{code}"),
            title: title_of(code),
            status: status_of(code).as_u16(),
            detail: detail.into(),
            code,
            members: Map::new(),
            internal: None,
        }))
    }

    /// Adds a refusal's facts; never one that would shadow a member every
    /// problem has (a client reads `status` as the HTTP status, always).
    fn with(mut self, members: Value) -> Self {
        if let Value::Object(mut members) = members {
            members.retain(|name, _| !STANDARD_MEMBERS.contains(&name.as_str()));
            self.0.members = members;
        }
        self
    }

    /// Keeps what went wrong inside for the log.
    fn hiding(mut self, internal: String) -> Self {
        self.0.internal = Some(internal);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.0.code)
    }

    pub fn no_such_route() -> Self {
        Self::new(ErrorCode::NotFound, "no such route")
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            "the request body is over the size limit",
        )
    }

    /// The body as stored for Idempotency-Key replays.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({ "code": self.0.code }))
    }
}

impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        let code = error.code();
        match error {
            AppError::Unauthorized(why) => Problem::new(code, why),
            AppError::Malformed(why) => Problem::new(code, why),
            AppError::Invalid(errors) => Problem::new(code, "one or more fields are invalid")
                .with(json!({ "errors": errors })),
            AppError::Refused(refusal) => refused(refusal),
            AppError::IdempotencyKeyReused => Problem::new(
                code,
                "this Idempotency-Key was already used with a different request",
            ),
            AppError::Unavailable(why) => Problem::new(
                code,
                "the service is unavailable; nothing was written and it is safe to retry",
            )
            .hiding(why),
            AppError::OutcomeUnknown(why) => Problem::new(
                code,
                "the database stopped answering while committing: the request may or may not have \
                 taken effect; retry it with the same Idempotency-Key to learn which",
            )
            .with(json!({ "outcome": "unknown" }))
            .hiding(why),
            AppError::Internal(why) => {
                Problem::new(code, "an unexpected error occurred").hiding(why)
            }
        }
    }
}

fn refused(refusal: Refusal) -> Problem {
    let code = refusal.code();
    match refusal {
        Refusal::NotFound { resource, id } => Problem::new(code, format!("{resource} {id} not found")),
        Refusal::InsufficientStock {
            product_id,
            requested,
            available,
        } => Problem::new(
            code,
            format!("product {product_id}: {requested} requested, {available} in stock"),
        )
        .with(json!({ "product_id": product_id, "requested": requested, "available": available })),
        Refusal::CreditLimitExceeded {
            credit_limit,
            balance,
            held,
            order_total,
        } => Problem::new(
            code,
            format!(
                "balance {balance} + held {held} + order {order_total} would exceed the credit limit {credit_limit}"
            ),
        )
        .with(json!({
            "credit_limit": credit_limit, "balance": balance, "held": held, "order_total": order_total
        })),
        Refusal::PaymentExceedsBalance { balance, amount } => Problem::new(
            code,
            format!("payment {amount} is more than the outstanding balance {balance}"),
        )
        .with(json!({ "balance": balance, "amount": amount })),
        Refusal::ReturnExceedsPurchase {
            product_id,
            returnable,
        } => Problem::new(
            code,
            format!("product {product_id}: only {returnable} can still be returned from this order"),
        )
        .with(json!({ "product_id": product_id, "returnable": returnable })),
        Refusal::CustomerOnHold { customer_id } => Problem::new(
            code,
            format!("customer {customer_id} is on hold: it may pay, return and be written off, but not buy"),
        )
        .with(json!({ "customer_id": customer_id })),
        Refusal::CustomerClosed { customer_id } => Problem::new(
            code,
            format!("customer {customer_id} is closed: no money or stock moves for it again"),
        )
        .with(json!({ "customer_id": customer_id })),
        Refusal::BalanceOutstanding { balance } => Problem::new(
            code,
            format!("the balance is {balance}: a customer is closed only from a zero balance"),
        )
        .with(json!({ "balance": balance })),
        Refusal::WriteOffExceedsBalance { balance, amount } => Problem::new(
            code,
            format!("write-off {amount} is more than the outstanding balance {balance}"),
        )
        .with(json!({ "balance": balance, "amount": amount })),
        // The contract names this fact `status`, which RFC 9457 (and the
        // contract's own error shape) already gives the HTTP status; the
        // hold's status is `hold_status`, so `status` stays the number.
        Refusal::HoldNotPending { status } => Problem::new(
            code,
            format!("the hold is {status}: only a pending hold can be captured or voided"),
        )
        .with(json!({ "hold_status": status })),
        Refusal::CaptureExceedsHold { product_id, held } => Problem::new(
            code,
            format!("product {product_id}: the hold holds {held}"),
        )
        .with(json!({ "product_id": product_id, "held": held })),
        Refusal::ValidationFailed { field, message } => {
            Problem::new(code, format!("{field}: {message}"))
                .with(json!({ "errors": [{ "field": field, "message": message }] }))
        }
    }
}

/// A JSON answer with the given status; problem+json for errors.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if status.is_client_error() || status.is_server_error() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    }
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

impl IntoResponse for Problem {
    /// Logs what was hidden from the client, here, where the error ends.
    fn into_response(self) -> Response {
        if let Some(internal) = &self.0.internal {
            match self.0.code {
                ErrorCode::Unavailable => tracing::warn!(detail = %internal, "unavailable"),
                _ => tracing::error!(detail = %internal, code = %self.0.code, "request failed"),
            }
        }
        json_response(self.status(), &self.to_json())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
