//! `/v1/customers`: create, read, list, change name or credit limit, and
//! the customer's ledger.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::sent;
use super::openapi::ListParams;
use super::problem::Problem;
use super::request::{Body, Query, WireInt, created_cursor, path_id, present, seq_cursor};
use super::views::{
    AccountStatus, Customer, CustomerChange, CustomerChangeList, CustomerList, LedgerEntry,
    LedgerEntryList,
};
use crate::app::AppError;
use crate::app::customers::{self, CustomerChanges, CustomerUpdate, NewCustomer};
use crate::domain::FieldError;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    #[schema(schema_with = super::openapi::name)]
    pub name: String,
    /// In minor units.
    #[schema(schema_with = super::openapi::non_negative)]
    pub credit_limit: WireInt,
    /// `active` when left out.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = AccountStatus, required = false)]
    pub status: Option<Option<String>>,
    /// Days from a purchase to its due date (0..=365); the business's
    /// payment terms when left out.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i32, required = false, minimum = 0, maximum = 365)]
    pub payment_terms_days: Option<Option<WireInt>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    #[serde(default, deserialize_with = "super::request::present")]
    #[schema(schema_with = super::openapi::optional_name)]
    pub name: Option<Option<String>>,
    /// May be set below the balance: that only blocks new purchases.
    #[serde(default, deserialize_with = "super::request::present")]
    #[schema(schema_with = super::openapi::optional_non_negative)]
    pub credit_limit: Option<Option<WireInt>>,
    /// `on_hold` stops purchases; `closed` (only from a zero balance) is
    /// final.
    #[serde(default, deserialize_with = "super::request::present")]
    #[schema(value_type = AccountStatus, required = false)]
    pub status: Option<Option<String>>,
    /// Applies to purchases made from now on; due dates already set never
    /// move.
    #[serde(default, deserialize_with = "super::request::present")]
    #[schema(value_type = i32, required = false, minimum = 0, maximum = 365)]
    pub payment_terms_days: Option<Option<WireInt>>,
}

#[utoipa::path(
    post,
    path = "/v1/customers",
    operation_id = "createCustomer",
    description = "Opens a customer account with a credit limit; its balance starts at 0.",
    tag = "customers",
    summary = "Create a customer",
    request_body = CreateCustomer,
    responses((status = 201, description = "The new customer", body = Customer)),
    security(("api_key" = []))
)]
pub async fn create(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    body: Body,
) -> Result<Response, Problem> {
    let request: CreateCustomer = body.parse()?;
    let request = NewCustomer {
        name: request.name,
        credit_limit: request.credit_limit.0,
        status: non_null("status", request.status)?,
        payment_terms_days: non_null("payment_terms_days", request.payment_terms_days)?
            .map(|days| days.0),
    };
    let customer = customers::create(&http.app, &tenant, deadline, request).await?;
    Ok(sent(StatusCode::CREATED, &Customer::from(customer)))
}

#[utoipa::path(
    get,
    path = "/v1/customers/{id}",
    operation_id = "getCustomer",
    description = "The customer with its balance (what the ledger says is owed) and available credit.",
    tag = "customers",
    summary = "Get a customer with balance and available credit",
    params(("id" = Uuid, Path, description = "customer id")),
    responses((status = 200, description = "The customer", body = Customer)),
    security(("api_key" = []))
)]
pub async fn get(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "customer")?;
    let customer = customers::get(&http.app, &tenant, deadline, id).await?;
    Ok(sent(StatusCode::OK, &Customer::from(customer)))
}

#[utoipa::path(
    get,
    path = "/v1/customers",
    operation_id = "listCustomers",
    description = "The business's customers, oldest first.",
    tag = "customers",
    summary = "List customers, oldest first",
    params(ListParams),
    responses((status = 200, description = "A page of customers, oldest first", body = CustomerList)),
    security(("api_key" = []))
)]
pub async fn list(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let page = Query::parse(query.as_deref())?.created_page()?;
    let listed = customers::list(&http.app, &tenant, deadline, page).await?;
    let page = CustomerList {
        data: listed.rows.into_iter().map(Customer::from).collect(),
        next_cursor: listed.next.map(created_cursor),
    };
    Ok(sent(StatusCode::OK, &page))
}

#[utoipa::path(
    patch,
    path = "/v1/customers/{id}",
    operation_id = "updateCustomer",
    description = "Renames the customer or changes its credit limit. A limit below the balance is allowed: it only blocks new purchases. Fields left out stay; null is refused.",
    tag = "customers",
    summary = "Change name or credit limit",
    request_body = UpdateCustomer,
    params(("id" = Uuid, Path, description = "customer id")),
    responses((status = 200, description = "The customer as changed", body = Customer)),
    security(("api_key" = []))
)]
pub async fn update(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let request: UpdateCustomer = body.parse()?;
    // The contract's order: invalid values, then an unknown id.
    let update = CustomerUpdate::parse(CustomerChanges {
        name: request.name,
        credit_limit: request.credit_limit.map(|limit| limit.map(|limit| limit.0)),
        status: request.status,
        payment_terms_days: request
            .payment_terms_days
            .map(|days| days.map(|days| days.0)),
    })?;
    let id = path_id(&id, "customer")?;
    let customer = customers::update(&http.app, &tenant, deadline, id, update).await?;
    Ok(sent(StatusCode::OK, &Customer::from(customer)))
}

#[utoipa::path(
    get,
    path = "/v1/customers/{id}/ledger",
    operation_id = "listCustomerLedger",
    description = "The customer's append-only credit ledger, oldest first: purchases (positive), payments and returns (negative), each with the balance after it.",
    tag = "customers",
    summary = "The customer's credit ledger, oldest first",
    params(("id" = Uuid, Path, description = "customer id"), ListParams),
    responses((status = 200, description = "A page of the customer's ledger, oldest first", body = LedgerEntryList)),
    security(("api_key" = []))
)]
pub async fn ledger(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let page = Query::parse(query.as_deref())?.seq_page()?;
    let id = path_id(&id, "customer")?;
    let listed = customers::ledger(&http.app, &tenant, deadline, id, page).await?;
    let page = LedgerEntryList {
        data: listed.rows.into_iter().map(LedgerEntry::from).collect(),
        next_cursor: listed.next.map(seq_cursor),
    };
    Ok(sent(StatusCode::OK, &page))
}

/// A field a POST may leave out but not send as null.
fn non_null<T>(field: &str, raw: Option<Option<T>>) -> Result<Option<T>, AppError> {
    match raw {
        Some(None) => {
            Err(FieldError::new(field, "must not be null (leave it out for the default)").into())
        }
        other => Ok(other.flatten()),
    }
}

#[utoipa::path(
    get,
    path = "/v1/customers/{id}/history",
    operation_id = "listCustomerHistory",
    description = "Every change of the customer's credit limit, status and payment terms, its creation first, append-only: who made it (the API key), when, and old → new of what changed.",
    tag = "customers",
    summary = "The customer's limit, status and terms history",
    params(("id" = Uuid, Path, description = "customer id"), ListParams),
    responses((status = 200, description = "A page of changes, oldest first", body = CustomerChangeList)),
    security(("api_key" = []))
)]
pub async fn history(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let page = Query::parse(query.as_deref())?.seq_page()?;
    let id = path_id(&id, "customer")?;
    let listed = customers::history(&http.app, &tenant, deadline, id, page).await?;
    let page = CustomerChangeList {
        data: listed.rows.into_iter().map(CustomerChange::from).collect(),
        next_cursor: listed.next.map(seq_cursor),
    };
    Ok(sent(StatusCode::OK, &page))
}
