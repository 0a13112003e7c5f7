//! `POST /v1/payments`: the customer pays down their balance.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::{Answer, Keyed, once, respond};
use super::openapi::IdempotencyKeyParam;
use super::problem::Problem;
use super::request::{Body, WireInt};
use super::views::LedgerEntry;
use crate::app::payments::{self, Payment, PaymentRequest as NewPayment};
use crate::domain::records;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub customer_id: Uuid,
    /// In minor units, at most the outstanding balance.
    #[schema(schema_with = super::openapi::positive)]
    pub amount: WireInt,
}

impl Answer for records::LedgerEntry {
    const STATUS: StatusCode = StatusCode::CREATED;
    type View = LedgerEntry;
}

#[utoipa::path(
    post,
    path = "/v1/payments",
    operation_id = "createPayment",
    description = "Records a payment against the customer's balance, never above it. Accepts an Idempotency-Key.",
    tag = "payments",
    summary = "Record a payment against the balance",
    request_body = PaymentRequest,
    params(IdempotencyKeyParam),
    responses((status = 201, description = "The payment's ledger entry", body = LedgerEntry)),
    security(("api_key" = []))
)]
pub async fn create(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let prepared = body.parse::<PaymentRequest>().and_then(|request| {
        Payment::parse(NewPayment {
            customer_id: request.customer_id,
            amount: request.amount.0,
        })
    });
    let Keyed {
        key,
        fingerprint,
        input,
    } = Keyed::new(&headers, &body, "POST /v1/payments", prepared)?;
    let once = once::<records::LedgerEntry>(&key, &fingerprint);
    respond(match input {
        Ok(payment) => payments::record(&http.app, &tenant, deadline, &once, payment).await,
        Err(error) => http.app.refuse_once(&tenant, deadline, &once, error).await,
    })
}
