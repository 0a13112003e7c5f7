//! `GET /v1/customers/{id}/statement`: a customer's account over a period,
//! as JSON pages, or (`Accept: text/csv`) every entry of the period as CSV,
//! streamed a chunk at a time in constant memory.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::stream;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::sent;
use super::openapi::ListParams;
use super::problem::Problem;
use super::request::{Query, path_id, seq_cursor};
use super::views::Statement;
use crate::app::AppError;
use crate::app::statements::{self, Export, Period};
use crate::domain::FieldError;
use crate::domain::records::{EntryKind, LedgerEntry};

/// The CSV columns, in order.
const CSV_HEADER: [&str; 6] = [
    "seq",
    "created_at",
    "kind",
    "amount",
    "balance_after",
    "order_id",
];

#[utoipa::path(
    get,
    path = "/v1/customers/{id}/statement",
    operation_id = "getCustomerStatement",
    description = "The customer's account over `[from, to)`: the balance brought forward (the balance after the last entry before `from`), a page of the period's entries (oldest first), their totals by kind, the balance carried forward, and the aging of that balance at `to`. `opening_balance` + the sum of every entry of the period = `closing_balance`, and the closing balance of one period is the opening of the next. With `Accept: text/csv`, every entry of the period (no paging) streams as CSV with the header `seq,created_at,kind,amount,balance_after,order_id`.",
    tag = "customers",
    summary = "A customer's statement for a period (JSON or CSV)",
    params(
        ("id" = Uuid, Path, description = "customer id"),
        ("from" = Option<String>, Query, format = DateTime, nullable = false, description = "RFC 3339; default: the start of the current calendar month (UTC), or of the month before `to`"),
        ("to" = Option<String>, Query, format = DateTime, nullable = false, description = "RFC 3339, exclusive; default: the start of the month after `from`"),
        ListParams
    ),
    responses((status = 200, description = "The statement", content(
        (Statement = "application/json"),
        (String = "text/csv")
    ))),
    security(("api_key" = []))
)]
pub async fn get(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let query = Query::parse(query.as_deref())?;
    let period = period(&query)?;
    let id = path_id(&id, "customer")?;
    if wants_csv(&headers) {
        metrics::counter!("ontab_statements_total", "format" => "csv").increment(1);
        let export = statements::export(
            &http.app,
            &tenant,
            deadline,
            id,
            period,
            http.request_timeout,
        )
        .await?;
        return Ok(csv_response(export, id, period));
    }
    metrics::counter!("ontab_statements_total", "format" => "json").increment(1);
    let page = query.seq_page()?;
    let (statement, next) =
        statements::statement(&http.app, &tenant, deadline, id, period, page).await?;
    Ok(sent(
        StatusCode::OK,
        &Statement::new(statement, next.map(seq_cursor)),
    ))
}

/// `?from=&to=`, RFC 3339 each.
fn period(query: &Query) -> Result<Period, AppError> {
    let mut errors = Vec::new();
    let mut instant = |name: &str| match query.get(name) {
        None => None,
        Some(raw) => match DateTime::parse_from_rfc3339(raw) {
            Ok(time) => Some(time.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new(
                    name,
                    "must be an RFC 3339 date and time, e.g. 2026-01-01T00:00:00Z",
                ));
                None
            }
        },
    };
    let (from, to) = (instant("from"), instant("to"));
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    Period::parse(from, to, Utc::now())
}

/// Whether the client asks for CSV: `text/csv` among its media ranges (with
/// no zero quality).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let essence = parts.next().unwrap_or("").to_ascii_lowercase();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            essence == "text/csv" && !refused
        })
}

fn kind(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Purchase => "purchase",
        EntryKind::Payment => "payment",
        EntryKind::Return => "return",
        EntryKind::WriteOff => "write_off",
    }
}

/// Rows as CSV; no header unless `header` is given.
fn csv_bytes(header: Option<&[&str]>, rows: &[LedgerEntry]) -> Result<Bytes, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 96));
    if let Some(header) = header {
        writer.write_record(header)?;
    }
    for row in rows {
        writer.write_record([
            row.seq.to_string(),
            row.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            kind(row.kind).to_owned(),
            row.amount.to_string(),
            row.balance_after.to_string(),
            row.order_id.map(|id| id.to_string()).unwrap_or_default(),
        ])?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|error| error.into_error().into())
}

/// The header, then a chunk of rows at a time, read as the client takes
/// them: memory stays one chunk whatever the period holds. A failure after
/// the first bytes can only end the stream early (the status is sent).
fn csv_response(export: Export, customer_id: uuid::Uuid, period: Period) -> Response {
    enum State {
        Header(Export),
        Rows(Export),
        Done,
    }
    let body = stream::unfold(State::Header(export), |state| async move {
        match state {
            State::Header(export) => Some((
                csv_bytes(Some(&CSV_HEADER), &[]).map_err(std::io::Error::other),
                State::Rows(export),
            )),
            State::Rows(mut export) => match export.next_chunk().await {
                Ok(Some(rows)) => Some((
                    csv_bytes(None, &rows).map_err(std::io::Error::other),
                    State::Rows(export),
                )),
                Ok(None) => None,
                Err(error) => {
                    tracing::error!(%error, "a statement export stopped early");
                    Some((Err(std::io::Error::other(error.to_string())), State::Done))
                }
            },
            State::Done => None,
        }
    });
    let filename = format!(
        "attachment; filename=\"statement-{customer_id}-{}.csv\"",
        period.from.format("%Y%m%d")
    );
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_chosen_by_the_accept_header() {
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            wants_csv(&headers)
        };
        assert!(accept("text/csv"));
        assert!(accept("application/json;q=0.5, text/csv"));
        assert!(!accept("application/json"));
        assert!(!accept("text/csv;q=0"));
        assert!(!wants_csv(&HeaderMap::new()));
    }
}
