//! `/v1/products`: create, read, list, rename or reprice, adjust stock.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::{Answer, Keyed, once, respond, sent};
use super::openapi::IdempotencyKeyParam;
use super::openapi::ListParams;
use super::problem::Problem;
use super::request::{Body, Query, WireInt, created_cursor, path_id, present};
use super::views::{Adjusted, Product, ProductList};
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
    operation_id = "createProduct",
    description = "Creates a product with a price and a stock.",
    tag = "products",
    summary = "Create a product",
    request_body = CreateProduct,
    responses((status = 201, description = "The new product", body = Product)),
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
    operation_id = "getProduct",
    description = "The product with its current price and stock.",
    tag = "products",
    summary = "Get a product",
    params(("id" = Uuid, Path, description = "product id")),
    responses((status = 200, description = "The product", body = Product)),
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
    operation_id = "listProducts",
    description = "The business's products, oldest first.",
    tag = "products",
    summary = "List products, oldest first",
    params(ListParams),
    responses((status = 200, description = "A page of products, oldest first", body = ProductList)),
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
    let page = ProductList {
        data: listed.rows.into_iter().map(Product::from).collect(),
        next_cursor: listed.next.map(created_cursor),
    };
    Ok(sent(StatusCode::OK, &page))
}

#[utoipa::path(
    patch,
    path = "/v1/products/{id}",
    operation_id = "updateProduct",
    description = "Renames or reprices the product. Past orders keep the prices they were bought at. Fields left out stay; null is refused.",
    tag = "products",
    summary = "Rename or reprice (past orders keep their prices)",
    request_body = UpdateProduct,
    params(("id" = Uuid, Path, description = "product id")),
    responses((status = 200, description = "The product as changed", body = Product)),
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
    operation_id = "createStockAdjustment",
    description = "Adds or removes stock outside purchases and returns (a recount, damage), with its reason; never below zero. Accepts an Idempotency-Key.",
    tag = "products",
    summary = "Adjust stock (never below zero)",
    request_body = AdjustStock,
    params(("id" = Uuid, Path, description = "product id"), IdempotencyKeyParam),
    responses((status = 201, description = "The product after the adjustment, and the adjustment", body = Adjusted)),
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
    } = Keyed::new(&headers, &body, &route, prepared)?;
    let once = once::<records::Adjusted>(&key, &fingerprint);
    respond(match input {
        Ok((id, adjustment)) => {
            stock::adjust(&http.app, &tenant, deadline, &once, id, adjustment).await
        }
        Err(error) => http.app.refuse_once(&tenant, deadline, &once, error).await,
    })
}
