//! `GET /v1/reports/overdue`: who owes what, and for how long.

use super::openapi::problems::{Unauthorized, Unavailable, ValidationFailed};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::auth::Tenant;
use super::request::Query;
use super::{ApiError, AppState};
use crate::db::reports::{self, OverdueCustomer};
use crate::domain::FieldError;

/// Terms when `?days=` is absent: the contract's example, a common default.
const DEFAULT_DAYS: i32 = 30;
/// A hundred years: anything longer is a typo, not a payment term.
const MAX_DAYS: i32 = 36_500;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OverdueReport {
    pub as_of: DateTime<Utc>,
    pub days: i32,
    /// Sorted by `oldest_unpaid_at`, oldest first.
    pub customers: Vec<OverdueCustomer>,
}

#[utoipa::path(
    get,
    path = "/v1/reports/overdue",
    tag = "reports",
    summary = "Customers with purchases older than `days` not yet settled (FIFO), with aging buckets",
    params(("days" = Option<i32>, Query, minimum = 0, maximum = 36500, description = "payment terms in days, 0..=36500 (default 30): a purchase older than this is overdue")),
    responses(
        (status = 200, body = OverdueReport),
        Unauthorized,
        ValidationFailed,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn overdue(
    State(app): State<AppState>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(query.as_deref())?;
    let days = match query.get("days").map(str::parse::<i32>) {
        None => DEFAULT_DAYS,
        Some(Ok(days @ 0..=MAX_DAYS)) => days,
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "days",
                "must be an integer from 0 to 36500",
            )]));
        }
    };
    let as_of = Utc::now();
    let tx = app.db.begin(tenant.business_id, tenant.key_id).await?;
    let customers = reports::overdue(&tx, as_of, days).await?;
    tx.commit().await?;
    Ok(axum::Json(OverdueReport {
        as_of,
        days,
        customers,
    })
    .into_response())
}
