//! `POST /v1/businesses` (admin): a new tenant and its first API key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::HttpState;
use super::auth::Admin;
use super::idempotent::sent;
use super::openapi::problems::{
    Malformed, PayloadTooLarge, Unauthorized, Unavailable, ValidationFailed,
};
use super::problem::Problem;
use super::request::Body;
use super::views::CreatedBusiness;
use crate::app::businesses::{self, NewBusiness};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBusiness {
    #[schema(schema_with = super::openapi::name)]
    pub name: String,
    /// ISO 4217 code; `USD` when omitted.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/businesses",
    tag = "businesses",
    summary = "Create a business and its first API key",
    request_body = CreateBusiness,
    responses(
        (status = 201, description = "The business; api_key.key is shown only here", body = CreatedBusiness),
        Malformed,
        Unauthorized,
        PayloadTooLarge,
        ValidationFailed,
        Unavailable
    ),
    security(("admin_token" = []))
)]
pub async fn create(
    State(http): State<HttpState>,
    _admin: Admin,
    body: Body,
) -> Result<Response, Problem> {
    let request: CreateBusiness = body.parse()?;
    let created = businesses::create(
        &http.app,
        NewBusiness {
            name: request.name,
            currency: request.currency,
        },
    )
    .await?;
    Ok(sent(StatusCode::CREATED, &CreatedBusiness::from(created)))
}
