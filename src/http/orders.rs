//! `/v1/orders`: read orders (immutable) and return goods against them.

use super::openapi::IdempotencyKeyParam;
use super::openapi::problems::{
    Malformed, NotFound, PayloadTooLarge, Refused, Unauthorized, Unavailable, ValidationFailed,
};
use super::openapi::{List, ListParams};
use crate::db::orders::{Order, Return};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Tenant;
use super::idempotent::{Answer, Command, run_once};
use super::purchases::{LineRequest, parse_lines};
use super::request::{Body, Query, created_cursor, idempotency_key, path_id};
use super::{ApiError, AppState, list_response, to_json};
use crate::db::{TenantTx, orders, returns};
use crate::domain::FieldError;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// Products of the order and how many of each come back.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineRequest>,
}

#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "orders",
    summary = "Get an order with its returns",
    params(("id" = Uuid, Path, description = "order id")),
    responses(
        (status = 200, body = Order),
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
    let id = path_id(&id, "order")?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let order = orders::get(&tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("order {id} not found")))?;
    tx.commit().await?;
    Ok(axum::Json(order).into_response())
}

/// Newest first; `?customer_id=` narrows to one customer.
#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    summary = "List orders, newest first",
    params(ListParams, ("customer_id" = Option<Uuid>, Query, description = "only this customer's orders")),
    responses(
        (status = 200, body = List<Order>),
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
    let query = Query::parse(query.as_deref())?;
    let customer_id = match query.get("customer_id") {
        None => None,
        Some(raw) => Some(Uuid::try_parse(raw).map_err(|_| {
            ApiError::Validation(vec![FieldError::new("customer_id", "must be a UUID")])
        })?),
    };
    let page = query.created_page()?;
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let rows = orders::list(&tx, customer_id, &page).await?;
    tx.commit().await?;
    let (rows, next) = page.finish(rows, orders::Order::key);
    Ok(list_response(rows, next.map(created_cursor)))
}

#[utoipa::path(
    post,
    path = "/v1/orders/{id}/returns",
    tag = "orders",
    summary = "Return goods: stock back, customer credited at the order price",
    request_body = ReturnRequest,
    params(("id" = Uuid, Path, description = "order id"), IdempotencyKeyParam),
    responses(
        (status = 201, body = Return),
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
pub async fn create_return(
    State(app): State<AppState>,
    tenant: Tenant,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let command = ReturnGoods {
        order_id,
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

struct ReturnGoods {
    order_id: String,
    request: ReturnRequest,
}

impl Command for ReturnGoods {
    fn route(&self) -> String {
        format!("POST /v1/orders/{}/returns", self.order_id)
    }

    async fn execute(&self, tx: &TenantTx) -> Result<Answer, ApiError> {
        let lines = parse_lines(&self.request.items)?;
        let order_id = path_id(&self.order_id, "order")?;
        let returned = returns::execute(tx, order_id, &lines).await??;
        Ok((StatusCode::CREATED, to_json(&returned)?))
    }
}
