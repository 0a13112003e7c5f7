//! `/v1/customers`: create, read, list, change name or credit limit, and
//! the customer's ledger.

use super::openapi::problems::{
    Malformed, NotFound, PayloadTooLarge, Unauthorized, Unavailable, ValidationFailed,
};
use super::openapi::{List, ListParams};
use crate::db::customers::Customer;
use crate::db::ledger::LedgerEntry;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Tenant;
use super::request::{Body, Query, created_cursor, path_id, seq_cursor};
use super::{ApiError, AppState, list_response};
use crate::db::{customers, ledger};
use crate::domain::{Name, NonNegative, Validator};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    #[schema(schema_with = super::openapi::name)]
    pub name: String,
    /// In minor units, >= 0.
    #[schema(minimum = 0)]
    pub credit_limit: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    #[schema(schema_with = super::openapi::optional_name)]
    pub name: Option<String>,
    /// May be set below the balance: that only blocks new purchases.
    #[schema(minimum = 0)]
    pub credit_limit: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/v1/customers",
    tag = "customers",
    summary = "Create a customer",
    request_body = CreateCustomer,
    responses(
        (status = 201, body = Customer),
        Malformed,
        Unauthorized,
        PayloadTooLarge,
        ValidationFailed,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn create(
    State(app): State<AppState>,
    tenant: Tenant,
    body: Body,
) -> Result<Response, ApiError> {
    let request: CreateCustomer = body.parse()?;
    let mut check = Validator::default();
    let name = check.check(Name::parse("name", &request.name));
    let limit = check.check(NonNegative::parse("credit_limit", request.credit_limit));
    let (name, limit) = check.finish(|| Some((name?, limit?)))?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let customer = customers::create(&tx, &name, limit).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(customer)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/customers/{id}",
    tag = "customers",
    summary = "Get a customer with balance and available credit",
    params(("id" = Uuid, Path, description = "customer id")),
    responses(
        (status = 200, body = Customer),
        Unauthorized,
        NotFound,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn get(
    State(app): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "customer")?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let customer = customers::get(&tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("customer {id} not found")))?;
    tx.commit().await?;
    Ok(axum::Json(customer).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/customers",
    tag = "customers",
    summary = "List customers, oldest first",
    params(ListParams),
    responses(
        (status = 200, body = List<Customer>),
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
    let rows = customers::list(&tx, &page).await?;
    tx.commit().await?;
    let (rows, next) = page.finish(rows, customers::Customer::key);
    Ok(list_response(rows, next.map(created_cursor)))
}

#[utoipa::path(
    patch,
    path = "/v1/customers/{id}",
    tag = "customers",
    summary = "Change name or credit limit",
    request_body = UpdateCustomer,
    params(("id" = Uuid, Path, description = "customer id")),
    responses(
        (status = 200, body = Customer),
        Malformed,
        Unauthorized,
        NotFound,
        PayloadTooLarge,
        ValidationFailed,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn update(
    State(app): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let request: UpdateCustomer = body.parse()?;
    let mut check = Validator::default();
    let name = request
        .name
        .as_deref()
        .map(|raw| check.check(Name::parse("name", raw)));
    let limit = request
        .credit_limit
        .map(|raw| check.check(NonNegative::parse("credit_limit", raw)));
    // A field given but invalid is already an error; given and valid is Some.
    let (name, limit) = check.finish(|| Some((name.flatten(), limit.flatten())))?;
    let id = path_id(&id, "customer")?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let customer = customers::update(&tx, id, name.as_ref(), limit)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("customer {id} not found")))?;
    tx.commit().await?;
    Ok(axum::Json(customer).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/customers/{id}/ledger",
    tag = "customers",
    summary = "The customer's credit ledger, oldest first",
    params(("id" = Uuid, Path, description = "customer id"), ListParams),
    responses(
        (status = 200, body = List<LedgerEntry>),
        Unauthorized,
        NotFound,
        ValidationFailed,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn ledger(
    State(app): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = Query::parse(query.as_deref())?.seq_page()?;
    let id = path_id(&id, "customer")?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let rows = ledger::list(&tx, id, &page)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("customer {id} not found")))?;
    tx.commit().await?;
    let (rows, next) = page.finish(rows, |entry| entry.seq);
    Ok(list_response(rows, next.map(seq_cursor)))
}
