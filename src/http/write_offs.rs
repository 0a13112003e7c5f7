//! `POST /v1/customers/{id}/write-offs`: bad debt forgiven, with its reason.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::{Keyed, once, respond};
use super::openapi::IdempotencyKeyParam;
use super::problem::Problem;
use super::request::{Body, WireInt, path_id};
use super::views::LedgerEntry;
use crate::app::write_offs::{self, WriteOff, WriteOffRequest};
use crate::domain::records;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWriteOff {
    /// In minor units, at most the outstanding balance.
    #[schema(schema_with = super::openapi::positive)]
    pub amount: WireInt,
    /// Why the debt is forgiven (1..=200 characters).
    #[schema(schema_with = super::openapi::name)]
    pub reason: String,
}

#[utoipa::path(
    post,
    path = "/v1/customers/{id}/write-offs",
    operation_id = "createWriteOff",
    description = "Forgives bad debt: a ledger entry of kind `write_off` (a negative amount) with its reason, never above the balance. Like a payment it settles the oldest purchases first; allowed while the customer is on hold, refused once it is closed. Accepts an Idempotency-Key.",
    tag = "customers",
    summary = "Write off part of a customer's balance",
    request_body = CreateWriteOff,
    params(("id" = Uuid, Path, description = "customer id"), IdempotencyKeyParam),
    responses((status = 201, description = "The write-off's ledger entry", body = LedgerEntry)),
    security(("api_key" = []))
)]
pub async fn create(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(customer_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let route = format!("POST /v1/customers/{customer_id}/write-offs");
    let prepared = body.parse::<CreateWriteOff>().and_then(|request| {
        let write_off = WriteOff::parse(WriteOffRequest {
            amount: request.amount.0,
            reason: request.reason,
        })?;
        Ok((path_id(&customer_id, "customer")?, write_off))
    });
    let Keyed {
        key,
        fingerprint,
        input,
    } = Keyed::new(&headers, &body, &route, prepared)?;
    let once = once::<records::LedgerEntry>(&key, &fingerprint);
    respond(match input {
        Ok((id, write_off)) => {
            write_offs::record(&http.app, &tenant, deadline, &once, id, write_off).await
        }
        Err(error) => http.app.refuse_once(&tenant, deadline, &once, error).await,
    })
}
