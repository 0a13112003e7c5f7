//! `/v1/business`: the caller's own business, its name and the payment
//! terms its new customers get.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::sent;
use super::problem::Problem;
use super::request::{Body, WireInt, present};
use super::views::Business;
use crate::app::businesses::{self, BusinessChanges};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBusiness {
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::openapi::optional_name)]
    pub name: Option<Option<String>>,
    /// The terms, in days, new customers get (0..=365); existing customers
    /// keep theirs.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i32, required = false, minimum = 0, maximum = 365)]
    pub payment_terms_days: Option<Option<WireInt>>,
}

#[utoipa::path(
    get,
    path = "/v1/business",
    operation_id = "getBusiness",
    description = "The business the API key belongs to.",
    tag = "businesses",
    summary = "The caller's business",
    responses((status = 200, description = "The business", body = Business)),
    security(("api_key" = []))
)]
pub async fn get(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
) -> Result<Response, Problem> {
    let business = businesses::get(&http.app, &tenant, deadline).await?;
    Ok(sent(StatusCode::OK, &Business::from(business)))
}

#[utoipa::path(
    patch,
    path = "/v1/business",
    operation_id = "updateBusiness",
    description = "Renames the business or changes the payment terms its new customers get. Existing customers keep their terms. Fields left out stay; null is refused.",
    tag = "businesses",
    summary = "Change the caller's business",
    request_body = UpdateBusiness,
    responses((status = 200, description = "The business as changed", body = Business)),
    security(("api_key" = []))
)]
pub async fn update(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    body: Body,
) -> Result<Response, Problem> {
    let request: UpdateBusiness = body.parse()?;
    let changes = BusinessChanges {
        name: request.name,
        payment_terms_days: request
            .payment_terms_days
            .map(|days| days.map(|days| days.0)),
    };
    let business = businesses::update(&http.app, &tenant, deadline, changes).await?;
    Ok(sent(StatusCode::OK, &Business::from(business)))
}
