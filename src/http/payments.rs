//! `POST /v1/payments`: the customer pays down their balance.

use super::openapi::IdempotencyKeyParam;
use super::openapi::problems::{
    Malformed, NotFound, PayloadTooLarge, Refused, Unauthorized, Unavailable, ValidationFailed,
};
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
    params(IdempotencyKeyParam),
    responses(
        (status = 201, body = LedgerEntry),
        Malformed,
        Unauthorized,
        NotFound,
        Refused,
        PayloadTooLarge,
        ValidationFailed,
        Unavailable
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
