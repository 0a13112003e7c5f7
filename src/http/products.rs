//! `/v1/products`: create, read, list, rename or reprice, adjust stock.

use super::openapi::IdempotencyKeyParam;
use super::openapi::problems::{
    Malformed, NotFound, PayloadTooLarge, Refused, Unauthorized, Unavailable, ValidationFailed,
};
use super::openapi::{List, ListParams};
use crate::db::products::Product;
use crate::db::stock::Adjusted;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Tenant;
use super::idempotent::{Answer, Command, run_once};
use super::request::{Body, Query, created_cursor, idempotency_key, path_id};
use super::{ApiError, AppState, list_response, to_json};
use crate::db::{TenantTx, products, stock};
use crate::domain::{FieldError, Name, NonNegative, Reason, Validator};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    #[schema(schema_with = super::openapi::name)]
    pub name: String,
    /// In minor units, >= 0.
    #[schema(minimum = 0)]
    pub price: i64,
    /// Units in stock, >= 0.
    #[schema(minimum = 0)]
    pub stock: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    #[schema(schema_with = super::openapi::optional_name)]
    pub name: Option<String>,
    /// New price for future orders; past orders keep theirs.
    #[schema(minimum = 0)]
    pub price: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustStock {
    /// Units to add (positive) or remove (negative); not zero.
    #[schema(schema_with = super::openapi::delta)]
    pub delta: i64,
    /// Why, for the record (e.g. "damaged", "recount").
    #[serde(default)]
    #[schema(schema_with = super::openapi::reason)]
    pub reason: String,
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
    State(app): State<AppState>,
    tenant: Tenant,
    body: Body,
) -> Result<Response, ApiError> {
    let request: CreateProduct = body.parse()?;
    let mut check = Validator::default();
    let name = check.check(Name::parse("name", &request.name));
    let price = check.check(NonNegative::parse("price", request.price));
    let stock = check.check(NonNegative::parse("stock", request.stock));
    let (name, price, stock) = check.finish(|| Some((name?, price?, stock?)))?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let product = products::create(&tx, &name, price, stock).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(product)).into_response())
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
    State(app): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "product")?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let product = products::get(&tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("product {id} not found")))?;
    tx.commit().await?;
    Ok(axum::Json(product).into_response())
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
    State(app): State<AppState>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = Query::parse(query.as_deref())?.created_page()?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let rows = products::list(&tx, &page).await?;
    tx.commit().await?;
    let (rows, next) = page.finish(rows, products::Product::key);
    Ok(list_response(rows, next.map(created_cursor)))
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
    State(app): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let request: UpdateProduct = body.parse()?;
    let mut check = Validator::default();
    let name = request
        .name
        .as_deref()
        .map(|raw| check.check(Name::parse("name", raw)));
    let price = request
        .price
        .map(|raw| check.check(NonNegative::parse("price", raw)));
    // A field given but invalid is already an error; given and valid is Some.
    let (name, price) = check.finish(|| Some((name.flatten(), price.flatten())))?;
    let id = path_id(&id, "product")?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let product = products::update(&tx, id, name.as_ref(), price)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("product {id} not found")))?;
    tx.commit().await?;
    Ok(axum::Json(product).into_response())
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
    State(app): State<AppState>,
    tenant: Tenant,
    Path(product_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let command = Adjust {
        product_id,
        request: body.parse()?,
    };
    let key = idempotency_key(&headers)?;
    run_once(
        &app.db,
        &tenant,
        key,
        body.fingerprint(&command.route()),
        &command,
    )
    .await
}

struct Adjust {
    product_id: String,
    request: AdjustStock,
}

impl Command for Adjust {
    fn route(&self) -> String {
        format!("POST /v1/products/{}/stock-adjustments", self.product_id)
    }

    async fn execute(&self, tx: &TenantTx) -> Result<Answer, ApiError> {
        let mut check = Validator::default();
        if self.request.delta == 0 {
            check.push(FieldError::new("delta", "must not be zero"));
        } else if self.request.delta == i64::MIN {
            // Its refusal would report `requested` = -delta, beyond i64.
            check.push(FieldError::new(
                "delta",
                "must be at least -9223372036854775807",
            ));
        }
        let reason = check.check(Reason::parse("reason", &self.request.reason));
        let reason = check.finish(|| reason)?;
        let product_id = path_id(&self.product_id, "product")?;
        let adjusted = stock::adjust(tx, product_id, self.request.delta, &reason).await??;
        Ok((StatusCode::CREATED, to_json(&adjusted)?))
    }
}
