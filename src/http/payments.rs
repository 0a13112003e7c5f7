//! `POST /v1/payments`: the customer pays down their balance.

use super::openapi::Problem;
use crate::db::ledger::LedgerEntry;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Tenant;
use super::idempotent::{Answer, Command, run_once};
use super::request::{Body, idempotency_key};
use super::{ApiError, AppState, to_json};
use crate::db::{TenantTx, payment};
use crate::domain::Positive;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub customer_id: Uuid,
    /// In minor units, > 0 and at most the outstanding balance.
    #[schema(minimum = 1)]
    pub amount: i64,
}

#[utoipa::path(
    post,
    path = "/v1/payments",
    tag = "payments",
    summary = "Record a payment against the balance",
    request_body = PaymentRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1..=255 visible ASCII characters; a retry with the same key and body replays the first answer")),
    responses(
        (status = 201, body = LedgerEntry),
        (status = 400, description = "malformed_request: not JSON, wrong types, unknown fields or content type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing, invalid or revoked credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such id in this business", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "a refusal with the facts to act on: insufficient_stock, credit_limit_exceeded, payment_exceeds_balance, return_exceeds_purchase or idempotency_key_reused", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed, with errors[]", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: database unreachable or overloaded; safe to retry", body = Problem, content_type = "application/problem+json")
    ),
    security(("api_key" = []))
)]
pub async fn create(
    State(app): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let payment = Payment(body.parse()?);
    let key = idempotency_key(&headers)?;
    run_once(
        &app.db,
        &tenant,
        key,
        body.fingerprint(&payment.route()),
        &payment,
    )
    .await
}

struct Payment(PaymentRequest);

impl Command for Payment {
    fn route(&self) -> String {
        "POST /v1/payments".to_owned()
    }

    async fn execute(&self, tx: &TenantTx) -> Result<Answer, ApiError> {
        let amount = Positive::parse("amount", self.0.amount)
            .map_err(|error| ApiError::Validation(vec![error]))?;
        let entry = payment::execute(tx, self.0.customer_id, amount).await??;
        Ok((StatusCode::CREATED, to_json(&entry)?))
    }
}
