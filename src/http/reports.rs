//! `GET /v1/reports/overdue`: who owes what, and for how long.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::sent;
use super::problem::Problem;
use super::request::Query;
use super::views::OverdueReport;
use crate::app::reports;
use crate::domain::FieldError;

#[utoipa::path(
    get,
    path = "/v1/reports/overdue",
    operation_id = "getOverdueReport",
    description = "Customers with a purchase past due that is not fully settled (payments, returns and write-offs settle the oldest purchases first), with the overdue amount and the balance by days past due; oldest debt first. A purchase is due at its own due date (the customer's payment terms when it was made), or, with `days`, that many days after it was made.",
    tag = "reports",
    summary = "Who owes what, past due, and for how long (FIFO, with aging buckets)",
    params(("days" = Option<i32>, Query, minimum = 0, maximum = 36500, nullable = false, description = "0..=36500: a purchase older than this is overdue. Left out, each purchase is overdue after its own due date (the customer's terms when it was made).")),
    responses((status = 200, description = "Who owes what, and for how long", body = OverdueReport)),
    security(("api_key" = []))
)]
pub async fn overdue(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let query = Query::parse(query.as_deref())?;
    let days = query
        .get("days")
        .map(|raw| {
            raw.parse::<i64>()
                .map_err(|_| FieldError::new("days", "must be an integer from 0 to 36500"))
        })
        .transpose()
        .map_err(crate::app::AppError::from)?;
    let report = reports::overdue(&http.app, &tenant, deadline, days).await?;
    Ok(sent(StatusCode::OK, &OverdueReport::from(report)))
}
