//! `/v1/holds`: authorize now, capture later. A hold reserves stock and
//! credit; a capture turns it (or part of it) into an order at the hold's
//! prices; a void, or its expiry, releases it.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::{Answer, Keyed, once, respond, sent};
use super::openapi::{IdempotencyKeyParam, ListParams};
use super::problem::Problem;
use super::purchases::{LineRequest, raw_lines};
use super::request::{Body, Query, WireInt, created_cursor, path_id};
use super::views::{self, HoldList, Order};
use crate::app::holds::{self, Capture, NewHold};
use crate::domain::records::{self, HoldStatus};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    pub customer_id: Uuid,
    /// 1..=100 lines, as a purchase's.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineRequest>,
    /// Seconds until the hold expires and releases everything
    /// (1..=2592000, default 900).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2592000, default = 900)]
    pub expires_in: Option<WireInt>,
}

#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// What to capture (1..=100 lines, each at most what the hold holds of
    /// that product); omit to capture everything held.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Option<Vec<LineRequest>>,
}

/// A void takes no fields: an empty body, or `{}`.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {}

impl Answer for records::Hold {
    const STATUS: StatusCode = StatusCode::CREATED;
    type View = views::Hold;
}

/// A voided hold, answered 200 (nothing is created).
#[derive(Debug, Clone)]
pub struct Voided(records::Hold);

impl From<records::Hold> for Voided {
    fn from(hold: records::Hold) -> Self {
        Self(hold)
    }
}

impl From<Voided> for views::Hold {
    fn from(voided: Voided) -> Self {
        voided.0.into()
    }
}

impl Answer for Voided {
    const STATUS: StatusCode = StatusCode::OK;
    type View = views::Hold;
}

#[utoipa::path(
    post,
    path = "/v1/holds",
    operation_id = "createHold",
    description = "Reserves stock and credit now, at today's prices, with the same checks, refusals and precedence as a purchase, all or nothing. While the hold is pending, its units count in each product's `reserved` (purchases and other holds may take only `available` = `stock - reserved`) and its total in the customer's `held` (`available_credit` = `max(credit_limit - balance - held, 0)`). It expires at `expires_at` (by the database's clock) and then releases everything, with no request needed. Accepts an Idempotency-Key.",
    tag = "holds",
    summary = "Hold stock and credit: authorize now, capture later",
    request_body = HoldRequest,
    params(IdempotencyKeyParam),
    responses((status = 201, description = "The pending hold", body = views::Hold)),
    security(("api_key" = []))
)]
pub async fn create(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let prepared = body.parse::<HoldRequest>().and_then(|request| {
        NewHold::parse(
            request.customer_id,
            &raw_lines(&request.items),
            request.expires_in.map(|seconds| seconds.0),
        )
    });
    let Keyed {
        key,
        fingerprint,
        input,
    } = Keyed::new(&headers, &body, "POST /v1/holds", prepared)?;
    let once = once::<records::Hold>(&key, &fingerprint);
    respond(match input {
        Ok(hold) => holds::create(&http.app, &tenant, deadline, &once, hold).await,
        Err(error) => http.app.refuse_once(&tenant, deadline, &once, error).await,
    })
}

#[utoipa::path(
    post,
    path = "/v1/holds/{id}/capture",
    operation_id = "captureHold",
    description = "Turns a pending hold into an ordinary order at the hold's prices (whatever the prices are now): all of it when `items` is omitted, or fewer lines or quantities; the rest is released. Once only: a hold that is no longer pending answers `hold_not_pending`. The order carries `hold_id`. Accepts an Idempotency-Key.",
    tag = "holds",
    summary = "Capture a hold: an order at the hold's prices",
    request_body(content = CaptureRequest, description = "Optional: no body captures everything held"),
    params(("id" = Uuid, Path, description = "hold id"), IdempotencyKeyParam),
    responses((status = 201, description = "The order, at the hold's prices", body = Order)),
    security(("api_key" = []))
)]
pub async fn capture(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(hold_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let route = format!("POST /v1/holds/{hold_id}/capture");
    let prepared = body.parse_or_empty::<CaptureRequest>().and_then(|request| {
        let items = request.items.as_deref().map(raw_lines);
        let capture = Capture::parse(items.as_deref())?;
        Ok((path_id(&hold_id, "hold")?, capture))
    });
    let Keyed {
        key,
        fingerprint,
        input,
    } = Keyed::new(&headers, &body, &route, prepared)?;
    let once = once::<records::Order>(&key, &fingerprint);
    respond(match input {
        Ok((id, capture)) => holds::capture(&http.app, &tenant, deadline, &once, id, capture).await,
        Err(error) => http.app.refuse_once(&tenant, deadline, &once, error).await,
    })
}

#[utoipa::path(
    post,
    path = "/v1/holds/{id}/void",
    operation_id = "voidHold",
    description = "Releases everything a pending hold reserves; allowed whatever the customer's status. A hold that is no longer pending answers `hold_not_pending`. Accepts an Idempotency-Key.",
    tag = "holds",
    summary = "Void a hold: release everything",
    request_body(content = VoidRequest, description = "Optional: an empty body, or `{}`"),
    params(("id" = Uuid, Path, description = "hold id"), IdempotencyKeyParam),
    responses((status = 200, description = "The hold, voided", body = views::Hold)),
    security(("api_key" = []))
)]
pub async fn void(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(hold_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let route = format!("POST /v1/holds/{hold_id}/void");
    let prepared = body
        .parse_or_empty::<VoidRequest>()
        .and_then(|VoidRequest {}| path_id(&hold_id, "hold"));
    let Keyed {
        key,
        fingerprint,
        input,
    } = Keyed::new(&headers, &body, &route, prepared)?;
    let once = once::<Voided>(&key, &fingerprint);
    respond(match input {
        Ok(id) => holds::void(&http.app, &tenant, deadline, &once, id).await,
        Err(error) => http.app.refuse_once(&tenant, deadline, &once, error).await,
    })
}

#[utoipa::path(
    get,
    path = "/v1/holds/{id}",
    operation_id = "getHold",
    description = "A hold and where it stands. A pending hold past its `expires_at` shows as `expired` at once, whether or not its expiry has been recorded.",
    tag = "holds",
    summary = "Get a hold",
    params(("id" = Uuid, Path, description = "hold id")),
    responses((status = 200, description = "The hold", body = views::Hold)),
    security(("api_key" = []))
)]
pub async fn get(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "hold")?;
    let hold = holds::get(&http.app, &tenant, deadline, id).await?;
    Ok(sent(StatusCode::OK, &views::Hold::from(hold)))
}

#[utoipa::path(
    get,
    path = "/v1/holds",
    operation_id = "listHolds",
    description = "The business's holds, newest first; `customer_id` narrows to one customer, `status` to one status.",
    tag = "holds",
    summary = "List holds, newest first",
    params(
        ListParams,
        ("customer_id" = Option<Uuid>, Query, description = "only this customer's holds"),
        ("status" = Option<views::HoldStatus>, Query, description = "only holds in this status")
    ),
    responses((status = 200, description = "A page of holds, newest first", body = HoldList)),
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
    let status = query
        .get("status")
        .map(|raw| HoldStatus::parse("status", raw))
        .transpose()
        .map_err(crate::app::AppError::from)?;
    let page = query.created_page()?;
    let listed = holds::list(&http.app, &tenant, deadline, customer_id, status, page).await?;
    let page = HoldList {
        data: listed.rows.into_iter().map(views::Hold::from).collect(),
        next_cursor: listed.next.map(created_cursor),
    };
    Ok(sent(StatusCode::OK, &page))
}
