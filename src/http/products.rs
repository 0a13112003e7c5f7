//! `/v1/products`: create, read, list, rename or reprice, adjust stock.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::{Answer, Keyed, once, respond, sent};
use super::openapi::IdempotencyKeyParam;
use super::openapi::problems::{
    Malformed, NotFound, PayloadTooLarge, Refused, Unauthorized, Unavailable, ValidationFailed,
};
use super::openapi::{List, ListParams};
use super::problem::Problem;
use super::request::{Body, Query, WireInt, created_cursor, path_id, present};
use super::views::{Adjusted, Product};
use super::{HttpState, list_response};
use crate::app::products::{self, NewProduct, ProductChanges, ProductUpdate};
use crate::app::stock::{self, Adjustment, AdjustmentRequest};
use crate::domain::records;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    #[schema(schema_with = super::openapi::name)]
    pub name: String,
    /// In minor units.
    #[schema(schema_with = super::openapi::non_negative)]
    pub price: WireInt,
    /// Units in stock.
    #[schema(schema_with = super::openapi::non_negative)]
    pub stock: WireInt,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::openapi::optional_name)]
    pub name: Option<Option<String>>,
    /// New price for future orders; past orders keep theirs.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::openapi::optional_non_negative)]
    pub price: Option<Option<WireInt>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustStock {
    /// Units to add (positive) or remove (negative); not zero.
    #[schema(schema_with = super::openapi::delta)]
    pub delta: WireInt,
    /// Why, for the record (e.g. "damaged", "recount").
    #[serde(default)]
    #[schema(schema_with = super::openapi::reason)]
    pub reason: String,
}

impl Answer for records::Adjusted {
    const STATUS: StatusCode = StatusCode::CREATED;
    type View = Adjusted;
}

#[utoipa::path(
    post,
    path = "/v1/products",
    tag = "products",
    summary = "Create a product",
    request_body = CreateProduct,
    responses(
        (status = 201, body = Product),
        Malformed,
        Unauthorized,
        PayloadTooLarge,
        ValidationFailed,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn create(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    body: Body,
) -> Result<Response, Problem> {
    let request: CreateProduct = body.parse()?;
    let request = NewProduct {
        name: request.name,
        price: request.price.0,
        stock: request.stock.0,
    };
    let product = products::create(&http.app, &tenant, deadline, request).await?;
    Ok(sent(StatusCode::CREATED, &Product::from(product)))
}

#[utoipa::path(
    get,
    path = "/v1/products/{id}",
    tag = "products",
    summary = "Get a product",
    params(("id" = Uuid, Path, description = "product id")),
    responses(
        (status = 200, body = Product),
        Unauthorized,
        NotFound,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn get(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "product")?;
    let product = products::get(&http.app, &tenant, deadline, id).await?;
    Ok(sent(StatusCode::OK, &Product::from(product)))
}

#[utoipa::path(
    get,
    path = "/v1/products",
    tag = "products",
    summary = "List products, oldest first",
    params(ListParams),
    responses(
        (status = 200, body = List<Product>),
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
    let listed = products::list(&http.app, &tenant, deadline, page).await?;
    Ok(list_response(
        listed.rows.into_iter().map(Product::from).collect(),
        listed.next.map(created_cursor),
    ))
}

#[utoipa::path(
    patch,
    path = "/v1/products/{id}",
    tag = "products",
    summary = "Rename or reprice (past orders keep their prices)",
    request_body = UpdateProduct,
    params(("id" = Uuid, Path, description = "product id")),
    responses(
        (status = 200, body = Product),
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
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let request: UpdateProduct = body.parse()?;
    // The contract's order: invalid values, then an unknown id.
    let update = ProductUpdate::parse(ProductChanges {
        name: request.name,
        price: request.price.map(|price| price.map(|price| price.0)),
    })?;
    let id = path_id(&id, "product")?;
    let product = products::update(&http.app, &tenant, deadline, id, update).await?;
    Ok(sent(StatusCode::OK, &Product::from(product)))
}

#[utoipa::path(
    post,
    path = "/v1/products/{id}/stock-adjustments",
    tag = "products",
    summary = "Adjust stock (never below zero)",
    request_body = AdjustStock,
    params(("id" = Uuid, Path, description = "product id"), IdempotencyKeyParam),
    responses(
        (status = 201, body = Adjusted),
        Malformed,
        Unauthorized,
        NotFound,
        Refused,
        PayloadTooLarge,
        ValidationFailed,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn adjust_stock(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(product_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let route = format!("POST /v1/products/{product_id}/stock-adjustments");
    // The contract's order: malformed, then invalid values, then unknown id.
    let prepared = body.parse::<AdjustStock>().and_then(|request| {
        let adjustment = Adjustment::parse(AdjustmentRequest {
            delta: request.delta.0,
            reason: request.reason,
        })?;
        Ok((path_id(&product_id, "product")?, adjustment))
    });
    let Keyed {
        key,
        fingerprint,
        input,
    } = Keyed::new(&headers, body.fingerprint(&route), prepared)?;
    let once = once::<records::Adjusted>(&key, &fingerprint);
    respond(match input {
        Ok((id, adjustment)) => {
            stock::adjust(&http.app, &tenant, deadline, &once, id, adjustment).await
        }
        Err(error) => http.app.refuse_once(&tenant, deadline, &once, error).await,
    })
}
