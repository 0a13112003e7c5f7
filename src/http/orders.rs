//! `/v1/orders`: read orders (immutable) and return goods against them.

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
use super::purchases::{LineRequest, raw_lines};
use super::request::{Body, Query, created_cursor, path_id};
use super::views::{Order, OrderList, Return};
use crate::app::orders;
use crate::app::returns::{self, ReturnOfGoods};
use crate::domain::records;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// Products of the order and how many of each come back.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineRequest>,
}

impl Answer for records::Return {
    const STATUS: StatusCode = StatusCode::CREATED;
    type View = Return;
}

#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    operation_id = "getOrder",
    description = "An order (never changed after it was written) with the returns made against it.",
    tag = "orders",
    summary = "Get an order with its returns",
    params(("id" = Uuid, Path, description = "order id")),
    responses((status = 200, description = "The order with its returns", body = Order)),
    security(("api_key" = []))
)]
pub async fn get(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "order")?;
    let order = orders::get(&http.app, &tenant, deadline, id).await?;
    Ok(sent(StatusCode::OK, &Order::from(order)))
}

/// Newest first; `?customer_id=` narrows to one customer.
#[utoipa::path(
    get,
    path = "/v1/orders",
    operation_id = "listOrders",
    description = "The business's orders, newest first; `customer_id` narrows to one customer.",
    tag = "orders",
    summary = "List orders, newest first",
    params(ListParams, ("customer_id" = Option<Uuid>, Query, description = "only this customer's orders")),
    responses((status = 200, description = "A page of orders, newest first", body = OrderList)),
    security(("api_key" = []))
)]
pub async fn list(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let query = Query::parse(query.as_deref())?;
    let customer_id = query.uuid("customer_id")?;
    let page = query.created_page()?;
    let listed = orders::list(&http.app, &tenant, deadline, customer_id, page).await?;
    let page = OrderList {
        data: listed.rows.into_iter().map(Order::from).collect(),
        next_cursor: listed.next.map(created_cursor),
    };
    Ok(sent(StatusCode::OK, &page))
}

#[utoipa::path(
    post,
    path = "/v1/orders/{id}/returns",
    operation_id = "createReturn",
    description = "Returns goods from an order: the stock comes back and the customer is credited at the order's unit prices, never beyond what the order bought minus earlier returns. Accepts an Idempotency-Key.",
    tag = "orders",
    summary = "Return goods: stock back, customer credited at the order price",
    request_body = ReturnRequest,
    params(("id" = Uuid, Path, description = "order id"), IdempotencyKeyParam),
    responses((status = 201, description = "The return: stock back, customer credited", body = Return)),
    security(("api_key" = []))
)]
pub async fn create_return(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let route = format!("POST /v1/orders/{order_id}/returns");
    let prepared = body.parse::<ReturnRequest>().and_then(|request| {
        let goods = ReturnOfGoods::parse(&raw_lines(&request.items))?;
        Ok((path_id(&order_id, "order")?, goods))
    });
    let Keyed {
        key,
        fingerprint,
        input,
    } = Keyed::new(&headers, &body, &route, prepared)?;
    let once = once::<records::Return>(&key, &fingerprint);
    respond(match input {
        Ok((id, goods)) => returns::record(&http.app, &tenant, deadline, &once, id, goods).await,
        Err(error) => http.app.refuse_once(&tenant, deadline, &once, error).await,
    })
}
