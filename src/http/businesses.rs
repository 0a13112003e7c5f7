//! `POST /v1/businesses` (admin): a new tenant and its first API key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::HttpState;
use super::auth::Admin;
use super::idempotent::sent;
use super::problem::Problem;
use super::request::{Body, present};
use super::views::CreatedBusiness;
use crate::app::AppError;
use crate::app::businesses::{self, NewBusiness};
use crate::domain::FieldError;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBusiness {
    #[schema(schema_with = super::openapi::name)]
    pub name: String,
    /// ISO 4217 code; `USD` when left out.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = false, pattern = "^[A-Z]{3}$")]
    pub currency: Option<Option<String>>,
}

#[utoipa::path(
    post,
    path = "/v1/businesses",
    operation_id = "createBusiness",
    description = "Creates a tenant and its first API key, in one transaction. Needs the operator's admin token (ONTAB_ADMIN_TOKEN). The key's plain text is shown only in this answer; the server keeps only its hash.",
    tag = "businesses",
    summary = "Create a business and its first API key",
    request_body = CreateBusiness,
    responses((status = 201, description = "The business and its first API key; `api_key.key` is shown only here", body = CreatedBusiness)),
    security(("admin_token" = []))
)]
pub async fn create(
    State(http): State<HttpState>,
    _admin: Admin,
    body: Body,
) -> Result<Response, Problem> {
    let request: CreateBusiness = body.parse()?;
    let currency = match request.currency {
        Some(None) => {
            let null = FieldError::new("currency", "must not be null (leave it out for USD)");
            return Err(AppError::from(null).into());
        }
        other => other.flatten(),
    };
    let created = businesses::create(
        &http.app,
        NewBusiness {
            name: request.name,
            currency,
        },
    )
    .await?;
    Ok(sent(StatusCode::CREATED, &CreatedBusiness::from(created)))
}
