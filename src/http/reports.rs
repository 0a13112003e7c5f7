//! `GET /v1/reports/overdue`: who owes what, and for how long.
//!
//! The report can list every customer of a business (9,000 customers, 2.2
//! MB of JSON on bench/report.sh's data set), so its JSON is written a
//! customer at a time as the rows arrive from PostgreSQL and sent in chunks,
//! never held as a list of records or a `serde_json::Value` tree. A task of
//! its own reads the rows to the end whatever the client's pace, so a slow
//! reader pins no database connection (the chunks wait in memory instead,
//! at most the report's size).
//!
//! The status is sent with the first chunk, and the first chunk is ready
//! only once a row arrived: PostgreSQL sorts the report, so by then the
//! query has done all its work, and whatever fails before (validation, a
//! revoked key, the deadline, the query) is answered as a problem. What
//! fails later (the connection, the deadline, COMMIT) cuts the body off: the
//! chunked transfer never ends properly and the JSON never closes, so a
//! client cannot take a truncated report for a whole one.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::problem::Problem;
use super::request::Query;
use super::views;
use crate::app::reports::{self, OverdueReport};
use crate::app::{self, AppError, Deadline};
use crate::domain::FieldError;

mod body;
use body::{JsonWriter, Piece, Producer, rest};

#[utoipa::path(
    get,
    path = "/v1/reports/overdue",
    operation_id = "getOverdueReport",
    description = "Customers with a purchase past due that is not fully settled (payments, returns and write-offs settle the oldest purchases first), with the overdue amount and the balance by days past due; oldest debt first. A purchase is due at its own due date (the customer's payment terms when it was made), or, with `days`, that many days after it was made.",
    tag = "reports",
    summary = "Who owes what, past due, and for how long (FIFO, with aging buckets)",
    params(("days" = Option<i32>, Query, minimum = 0, maximum = 36500, nullable = false, description = "0..=36500: a purchase older than this is overdue. Left out, each purchase is overdue after its own due date (the customer's terms when it was made).")),
    responses((status = 200, description = "Who owes what, and for how long", body = views::OverdueReport)),
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
        .map_err(AppError::from)?;
    let report = OverdueReport::new(days)?;
    let (pieces, mut received) = mpsc::unbounded_channel();
    let writer = JsonWriter::new(report, pieces.clone());
    let producer = Producer(tokio::spawn(produce(
        http.app.clone(),
        tenant,
        deadline,
        report,
        writer,
        pieces,
    )));
    let body = match received.recv().await {
        Some(Piece::Last(json)) => Body::from(json),
        Some(Piece::Chunk(json)) => Body::from_stream(rest(json, received, producer)),
        Some(Piece::Failed(error)) => return Err(error.into()),
        None => {
            return Err(AppError::Internal("the overdue report's task ended early".into()).into());
        }
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Runs the report into `writer`, then closes the JSON, or reports why not.
async fn produce(
    app: Arc<app::App>,
    tenant: app::Tenant,
    deadline: Deadline,
    report: OverdueReport,
    writer: JsonWriter,
    pieces: mpsc::UnboundedSender<Piece>,
) {
    let piece = match reports::overdue(&app, &tenant, deadline, report, writer).await {
        Ok(writer) => writer.finish(),
        Err(error) => Piece::Failed(error),
    };
    // The receiver is gone only with the response: nobody to tell.
    let _ = pieces.send(piece);
}
