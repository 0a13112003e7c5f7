//! `GET /v1/events`: the business's events in sequence order, with a
//! long-poll for the next ones.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use uuid::Uuid;

use super::HttpState;
use super::auth::Tenant;
use super::idempotent::sent;
use super::problem::Problem;
use super::request::Query;
use crate::app::{AppError, events};
use crate::domain::events::{Event as EventRecord, EventData, EventType, FeedRequest};

/// An event type's wire name in the spec. Written by hand rather than
/// derived so the enum is `EventType::ALL` itself: the document cannot list a
/// type the server refuses, or miss one it sends.
pub struct EventTypeName;

impl PartialSchema for EventTypeName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(EventType::ALL.iter().map(|kind| kind.as_str())))
            .description(Some("An event type, as named on the wire."))
            .into()
    }
}

impl ToSchema for EventTypeName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventType")
    }
}

/// Something that happened to one of the business's customers or products.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    /// The event's id (also `webhook-id` and `Nats-Msg-Id` when delivered).
    pub id: Uuid,
    /// Per business, from 1, no gaps, in commit order.
    #[schema(minimum = 1)]
    pub sequence: i64,
    #[serde(rename = "type")]
    #[schema(rename = "type", value_type = EventTypeName, example = "purchase.created")]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    /// The customer or product the event is about.
    pub subject_id: Uuid,
    /// The resource as the API returned it then: the customer, product,
    /// order, ledger entry, return or hold; for stock.adjusted the
    /// `{product, adjustment}` answer; for customer.overdue the customer
    /// with `overdue: {order_id, due_at, unsettled_amount}`.
    #[schema(value_type = Object)]
    pub data: EventData,
}

impl From<EventRecord> for Event {
    fn from(event: EventRecord) -> Self {
        Self {
            id: event.id,
            sequence: event.sequence,
            event_type: event.event_type,
            created_at: event.created_at,
            subject_id: event.subject_id,
            data: event.data,
        }
    }
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// Events after `after`, oldest first.
    pub data: Vec<Event>,
    /// Pass it as `after` next: every event up to it has been returned (or
    /// left out by `types`).
    #[schema(minimum = 0)]
    pub next_after: i64,
    /// The oldest sequence still kept: events are kept at least 30 days
    /// (the operator's `--event-retention`), then the oldest are pruned. A
    /// reader whose `after` is below `oldest_sequence - 1` has missed
    /// events.
    #[schema(minimum = 1)]
    pub oldest_sequence: i64,
}

/// The feed's query parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "describes the query read by http::request::Query")]
pub struct FeedParams {
    /// Events with a greater sequence: 0 (default) for the oldest kept, then
    /// the previous page's `next_after`.
    #[param(
        minimum = 0,
        maximum = 9007199254740991_i64,
        required = false,
        nullable = false
    )]
    after: Option<i64>,
    /// Events per page: 1..=200, default 50.
    #[param(minimum = 1, maximum = 200, required = false, nullable = false)]
    limit: Option<u8>,
    /// Only these types, comma-separated (e.g.
    /// `purchase.created,payment.recorded`); every type when left out.
    #[param(
        required = false,
        nullable = false,
        style = Form,
        explode = false,
        value_type = Option<Vec<EventTypeName>>,
        min_items = 1
    )]
    types: Option<Vec<String>>,
    /// Seconds (0..=30, default 0) to wait for a newer event when there is
    /// none yet: answered as soon as one is sequenced, or empty at the end.
    #[param(minimum = 0, maximum = 30, required = false, nullable = false)]
    wait: Option<u8>,
}

#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "listEvents",
    description = "The business's events in `sequence` order: per business from 1, no gaps, in commit order. A reader that always passes the last `next_after` as `after` sees every event exactly once, in order, even while writes commit concurrently. Each event is written in the same transaction as its change, so a refused or rolled-back request has none; it appears in the feed once numbered, shortly after its commit. With `wait`, a request that finds nothing newer waits up to that many seconds for it.",
    tag = "events",
    summary = "Read the event feed, long-polling for new events",
    params(FeedParams),
    responses((status = 200, description = "A page of events, oldest first", body = EventPage)),
    security(("api_key" = []))
)]
pub async fn list(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let query = Query::parse(query.as_deref())?;
    let request = FeedRequest::parse(
        query.get("after"),
        query.get("limit"),
        query.get("types"),
        query.get("wait"),
    )
    .map_err(AppError::Invalid)?;
    let feed = events::feed(&http.app, &tenant, http.request_timeout, request).await?;
    Ok(sent(
        StatusCode::OK,
        &EventPage {
            data: feed.events.into_iter().map(Event::from).collect(),
            next_after: feed.next_after,
            oldest_sequence: feed.oldest_available,
        },
    ))
}
