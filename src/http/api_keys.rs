//! `/v1/api-keys`: more keys for the caller's business, listing, revocation.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::sent;
use super::openapi::problems::{NotFound, Unauthorized, Unavailable, ValidationFailed};
use super::openapi::{List, ListParams};
use super::problem::Problem;
use super::request::{Query, created_cursor, path_id};
use super::views::{ApiKeyInfo, CreatedKey};
use super::{HttpState, list_response};
use crate::app::api_keys;

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
pub async fn create(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
) -> Result<Response, Problem> {
    let issued = api_keys::create(&http.app, &tenant, deadline).await?;
    let created = CreatedKey {
        id: issued.info.id,
        key: issued.key,
        created_at: issued.info.created_at,
    };
    Ok(sent(StatusCode::CREATED, &created))
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
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let page = Query::parse(query.as_deref())?.created_page()?;
    let listed = api_keys::list(&http.app, &tenant, deadline, page).await?;
    Ok(list_response(
        listed.rows.into_iter().map(ApiKeyInfo::from).collect(),
        listed.next.map(created_cursor),
    ))
}

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
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "API key")?;
    api_keys::revoke(&http.app, &tenant, deadline, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
