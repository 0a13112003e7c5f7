//! `POST /v1/businesses` (admin): a new tenant and its first API key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::HttpState;
use super::auth::Admin;
use super::idempotent::sent;
use super::problem::Problem;
use super::request::{Body, WireInt, present};
use super::views::CreatedBusiness;
use crate::app::businesses::{self, NewBusiness};
use crate::app::{Actor, AppError};
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
    /// The payment terms, in days, its new customers get; 30 when left out.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i32, required = false, minimum = 0, maximum = 365)]
    pub payment_terms_days: Option<Option<WireInt>>,
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
    let payment_terms_days = match request.payment_terms_days {
        Some(None) => {
            let null = FieldError::new(
                "payment_terms_days",
                "must not be null (leave it out for 30)",
            );
            return Err(AppError::from(null).into());
        }
        other => other.flatten().map(|days| days.0),
    };
    let created = businesses::create(
        &http.app,
        Actor::Admin,
        NewBusiness {
            name: request.name,
            currency,
            payment_terms_days,
        },
    )
    .await?;
    Ok(sent(StatusCode::CREATED, &CreatedBusiness::from(created)))
}
