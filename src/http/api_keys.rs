//! `/v1/api-keys`: more keys for the caller's business, listing, revocation.

use super::openapi::problems::{NotFound, Unauthorized, Unavailable, ValidationFailed};
use super::openapi::{List, ListParams};
use crate::db::api_keys::ApiKeyInfo;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::auth::Tenant;
use super::request::{Query, created_cursor, path_id};
use super::{ApiError, AppState, list_response};
use crate::db::api_keys;
use crate::domain::api_key::ApiKey;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub id: Uuid,
    /// The plain key, shown only in this response.
    pub key: String,
    pub created_at: DateTime<Utc>,
}

#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "Issue another API key for this business",
    responses(
        (status = 201, body = CreatedKey),
        Unauthorized,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn create(State(app): State<AppState>, tenant: Tenant) -> Result<Response, ApiError> {
    let key = ApiKey::generate()
        .map_err(|error| crate::db::DbError::Config(format!("random source: {error}")))?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let info = api_keys::create(&tx, key.id, &key.secret_sha256()).await?;
    tx.commit().await?;
    let created = CreatedKey {
        id: info.id,
        key: key.reveal(),
        created_at: info.created_at,
    };
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "List API keys (never the secrets)",
    params(ListParams),
    responses(
        (status = 200, body = List<ApiKeyInfo>),
        Unauthorized,
        ValidationFailed,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = Query::parse(query.as_deref())?.created_page()?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let rows = api_keys::list(&tx, &page).await?;
    tx.commit().await?;
    let (rows, next) = page.finish(rows, api_keys::ApiKeyInfo::key);
    Ok(list_response(rows, next.map(created_cursor)))
}

/// Revocation takes effect at once, on every server instance: each tenant
/// transaction checks that its key is live when it begins.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    summary = "Revoke an API key at once",
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked"),
        Unauthorized,
        NotFound,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn revoke(
    State(app): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "API key")?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let revoked = api_keys::revoke(&tx, id).await?;
    tx.commit().await?;
    // Other instances find out when the key's next transaction begins; this
    // one also stops authenticating it from its cache, so the key's next
    // request here is refused up front like any invalid key (401 even
    // where a malformed body would otherwise be answered first).
    app.db.forget_api_key(id);
    if revoked {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("API key {id} not found")))
    }
}
