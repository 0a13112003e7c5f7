//! `/v1/api-keys`: more keys for the caller's business, listing, revocation.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::sent;
use super::openapi::ListParams;
use super::problem::Problem;
use super::request::{Query, created_cursor, path_id};
use super::views::{ApiKeyInfo, ApiKeyList, CreatedKey};
use crate::app::api_keys;

#[utoipa::path(
    post,
    path = "/v1/api-keys",
    operation_id = "createApiKey",
    description = "Issues another API key for the caller's business. Its plain text is shown only in this answer.",
    tag = "api-keys",
    summary = "Issue another API key for this business",
    responses((status = 201, description = "The new key; `key` is shown only here", body = CreatedKey)),
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
    operation_id = "listApiKeys",
    description = "The business's API keys, oldest first, with when each was revoked; never their secrets.",
    tag = "api-keys",
    summary = "List API keys (never the secrets)",
    params(ListParams),
    responses((status = 200, description = "A page of the business's keys, oldest first", body = ApiKeyList)),
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
    let page = ApiKeyList {
        data: listed.rows.into_iter().map(ApiKeyInfo::from).collect(),
        next_cursor: listed.next.map(created_cursor),
    };
    Ok(sent(StatusCode::OK, &page))
}

#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    operation_id = "revokeApiKey",
    description = "Revokes a key of the caller's business. It stops working at once, on every server instance.",
    tag = "api-keys",
    summary = "Revoke an API key at once",
    params(("id" = Uuid, Path, description = "API key id")),
    responses((status = 204, description = "Revoked; the key stops working at once")),
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
