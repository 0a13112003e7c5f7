//! `POST /v1/businesses` (admin): a new tenant and its first API key.

use super::openapi::problems::{
    Malformed, PayloadTooLarge, Unauthorized, Unavailable, ValidationFailed,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::Admin;
use super::request::Body;
use super::{ApiError, AppState};
use crate::db::{api_keys, businesses};
use crate::domain::api_key::ApiKey;
use crate::domain::{Currency, Name, Validator};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBusiness {
    #[schema(schema_with = super::openapi::name)]
    pub name: String,
    /// ISO 4217 code; `USD` when omitted.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
}

/// A new API key: the only time its plain text is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub id: Uuid,
    pub key: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedBusiness {
    #[serde(flatten)]
    pub business: businesses::Business,
    pub api_key: IssuedKey,
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
    State(app): State<AppState>,
    _admin: Admin,
    body: Body,
) -> Result<Response, ApiError> {
    let request: CreateBusiness = body.parse()?;
    let mut check = Validator::default();
    let name = check.check(Name::parse("name", &request.name));
    let currency = match &request.currency {
        Some(raw) => check.check(Currency::parse("currency", raw)),
        None => Some(Currency::default()),
    };
    let (name, currency) = check.finish(|| Some((name?, currency?)))?;
    let created = create_with_key(&app, &name, &currency).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// Creates the business and its first key in one transaction, acting as the
/// new tenant. Also used by `ontab businesses create`.
pub async fn create_with_key(
    app: &AppState,
    name: &Name,
    currency: &Currency,
) -> Result<CreatedBusiness, ApiError> {
    let key = ApiKey::generate()
        .map_err(|error| crate::db::DbError::Config(format!("random source: {error}")))?;
    let business_id = Uuid::now_v7();
    let tx = app.db.begin_as_operator(business_id).await?;
    let business = businesses::create(&tx, name, currency).await?;
    api_keys::create(&tx, key.id, &key.secret_sha256()).await?;
    tx.commit().await?;
    Ok(CreatedBusiness {
        business,
        api_key: IssuedKey {
            id: key.id,
            key: key.reveal(),
        },
    })
}
