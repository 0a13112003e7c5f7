//! `/v1/webhook-endpoints`: where a business's events are POSTed, signed;
//! its secret (shown on creation and rotation only), the attempts log and
//! replay.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::sent;
use super::openapi::ListParams;
use super::problem::Problem;
use super::request::{Body, Query, WireInt, created_cursor, path_id, present};
use crate::app::AppError;
use crate::app::webhooks::{self, CreatedEndpoint, EndpointPatch, NewEndpoint};
use crate::domain::FieldError;
use crate::domain::webhook::{DeliveryAttempt, WebhookEndpoint};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// http(s) URL receiving the POSTs; it must resolve to public addresses
    /// unless the server runs with --webhook-allow-private.
    #[schema(max_length = 2048, pattern = "^https?://")]
    pub url: String,
    /// Event types to send; every type when left out.
    #[serde(default)]
    #[schema(value_type = Option<Vec<super::events::EventTypeName>>, required = false, min_items = 1)]
    pub types: Option<Vec<String>>,
    #[serde(default)]
    #[schema(required = false, max_length = 500)]
    pub description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookEndpoint {
    #[serde(default, deserialize_with = "present")]
    #[schema(
        value_type = String,
        required = false,
        max_length = 2048,
        pattern = "^https?://"
    )]
    pub url: Option<Option<String>>,
    /// null: every type from now on.
    #[serde(default, deserialize_with = "present")]
    #[schema(
        value_type = Option<Vec<super::events::EventTypeName>>,
        required = false,
        min_items = 1
    )]
    pub types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = false, max_length = 500)]
    pub description: Option<Option<String>>,
    /// true stops deliveries; false resumes them (also after a 410).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool, required = false)]
    pub disabled: Option<Option<bool>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[schema(schema_with = super::openapi::sequence_after)]
    pub after: WireInt,
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointView {
    pub id: Uuid,
    pub url: String,
    /// The types sent; null for every type.
    #[schema(value_type = Option<Vec<super::events::EventTypeName>>, required = true)]
    pub types: Option<Vec<String>>,
    pub description: String,
    pub disabled: bool,
    /// `requested` (PATCH) or `gone` (the endpoint answered 410); null
    /// while enabled.
    #[schema(required = true)]
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookEndpoint> for WebhookEndpointView {
    fn from(endpoint: WebhookEndpoint) -> Self {
        Self {
            id: endpoint.id,
            url: endpoint.url,
            types: endpoint.types,
            description: endpoint.description,
            disabled: endpoint.disabled,
            disabled_reason: endpoint.disabled_reason,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// An endpoint with its signing secret, shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[serde(flatten)]
    #[schema(inline)]
    pub endpoint: WebhookEndpointView,
    /// `whsec_` + base64 of 32 random bytes: the HMAC key of the
    /// `webhook-signature` header.
    pub secret: String,
}

impl From<CreatedEndpoint> for WebhookEndpointWithSecret {
    fn from(created: CreatedEndpoint) -> Self {
        Self {
            secret: created.secret.to_whsec(),
            endpoint: created.endpoint.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointList {
    pub data: Vec<WebhookEndpointView>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// One attempt to deliver an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttempt {
    pub id: Uuid,
    /// The event's id, also its `webhook-id`.
    pub event_id: Uuid,
    /// The delivery this attempt belongs to: the record that carries an
    /// event's retries. Null for an event delivered at its first attempt,
    /// which needs none.
    #[schema(required = true)]
    pub delivery_id: Option<Uuid>,
    /// 1 for the delivery's first attempt.
    pub attempt: i32,
    /// The receiver's status; null when none came (refused, timed out).
    #[schema(required = true)]
    pub status_code: Option<i32>,
    /// What went wrong, when no status says it.
    #[schema(required = true)]
    pub error: Option<String>,
    pub duration_ms: i32,
    /// `delivered`, `retrying`, `gave_up` (the schedule ran out) or
    /// `disabled` (410 Gone disabled the endpoint).
    pub outcome: String,
    /// When the next attempt is due, while retrying.
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempted_at: DateTime<Utc>,
}

impl From<DeliveryAttempt> for WebhookAttempt {
    fn from(attempt: DeliveryAttempt) -> Self {
        Self {
            id: attempt.id,
            event_id: attempt.event_id,
            delivery_id: attempt.delivery_id,
            attempt: attempt.attempt,
            status_code: attempt.status_code,
            error: attempt.error,
            duration_ms: attempt.duration_ms,
            outcome: attempt.outcome,
            next_attempt_at: attempt.next_attempt_at,
            attempted_at: attempt.attempted_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttemptList {
    pub data: Vec<WebhookAttempt>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub endpoint_id: Uuid,
    pub after: i64,
    /// Events queued to be sent again.
    pub replayed: u64,
}

const ENDPOINT: &str = "webhook endpoint";

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints",
    operation_id = "createWebhookEndpoint",
    description = "Registers a URL to receive the business's events (those sequenced from now on), POSTed with Standard Webhooks headers and signatures. The secret is shown only in this answer. A URL whose host is or resolves to a loopback, private, link-local or metadata address is refused (422) unless the server allows private addresses.",
    tag = "webhooks",
    summary = "Create a webhook endpoint",
    request_body = CreateWebhookEndpoint,
    responses((status = 201, description = "The endpoint and its secret", body = WebhookEndpointWithSecret)),
    security(("api_key" = []))
)]
pub async fn create(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    body: Body,
) -> Result<Response, Problem> {
    let request: CreateWebhookEndpoint = body.parse()?;
    let created = webhooks::create(
        &http.app,
        &tenant,
        deadline,
        NewEndpoint {
            url: request.url,
            types: request.types,
            description: request.description,
        },
    )
    .await?;
    Ok(sent(
        StatusCode::CREATED,
        &WebhookEndpointWithSecret::from(created),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints",
    operation_id = "listWebhookEndpoints",
    description = "The business's webhook endpoints, oldest first; never their secrets.",
    tag = "webhooks",
    summary = "List webhook endpoints",
    params(ListParams),
    responses((status = 200, description = "A page of endpoints, oldest first", body = WebhookEndpointList)),
    security(("api_key" = []))
)]
pub async fn list(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let page = Query::parse(query.as_deref())?.created_page()?;
    let listed = webhooks::list(&http.app, &tenant, deadline, page).await?;
    let page = WebhookEndpointList {
        data: listed
            .rows
            .into_iter()
            .map(WebhookEndpointView::from)
            .collect(),
        next_cursor: listed.next.map(created_cursor),
    };
    Ok(sent(StatusCode::OK, &page))
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}",
    operation_id = "getWebhookEndpoint",
    description = "One webhook endpoint; never its secret.",
    tag = "webhooks",
    summary = "Get a webhook endpoint",
    params(("id" = Uuid, Path, description = "webhook endpoint id")),
    responses((status = 200, description = "The endpoint", body = WebhookEndpointView)),
    security(("api_key" = []))
)]
pub async fn get(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = path_id(&id, ENDPOINT)?;
    let endpoint = webhooks::get(&http.app, &tenant, deadline, id).await?;
    Ok(sent(StatusCode::OK, &WebhookEndpointView::from(endpoint)))
}

#[utoipa::path(
    patch,
    path = "/v1/webhook-endpoints/{id}",
    operation_id = "updateWebhookEndpoint",
    description = "Changes the URL (checked as on creation), the type filter (null: every type), the description, or disables / enables the endpoint. Events sequenced while it is disabled are not sent (replay sends them); deliveries pending when it was disabled resume when it is enabled.",
    tag = "webhooks",
    summary = "Change or disable a webhook endpoint",
    request_body = UpdateWebhookEndpoint,
    params(("id" = Uuid, Path, description = "webhook endpoint id")),
    responses((status = 200, description = "The endpoint as changed", body = WebhookEndpointView)),
    security(("api_key" = []))
)]
pub async fn update(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let request: UpdateWebhookEndpoint = body.parse()?;
    let patch = EndpointPatch {
        url: non_null("url", request.url)?,
        types: request.types,
        description: non_null("description", request.description)?,
        disabled: non_null("disabled", request.disabled)?,
    };
    let id = path_id(&id, ENDPOINT)?;
    let endpoint = webhooks::update(&http.app, &tenant, deadline, id, patch).await?;
    Ok(sent(StatusCode::OK, &WebhookEndpointView::from(endpoint)))
}

/// A field a PATCH may leave out but not send as null.
fn non_null<T>(field: &str, raw: Option<Option<T>>) -> Result<Option<T>, AppError> {
    match raw {
        Some(None) => Err(FieldError::new(field, "must not be null").into()),
        other => Ok(other.flatten()),
    }
}

#[utoipa::path(
    delete,
    path = "/v1/webhook-endpoints/{id}",
    operation_id = "deleteWebhookEndpoint",
    description = "Deletes the endpoint with its secrets, pending deliveries and attempts log. An attempt already under way may still arrive.",
    tag = "webhooks",
    summary = "Delete a webhook endpoint",
    params(("id" = Uuid, Path, description = "webhook endpoint id")),
    responses((status = 204, description = "Deleted")),
    security(("api_key" = []))
)]
pub async fn delete(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = path_id(&id, ENDPOINT)?;
    webhooks::delete(&http.app, &tenant, deadline, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/rotate-secret",
    operation_id = "rotateWebhookSecret",
    description = "Issues a new signing secret, shown only in this answer. The secrets it replaces keep signing for 24 hours: meanwhile every delivery carries one signature per secret, space-separated, so receivers can switch without missing a beat.",
    tag = "webhooks",
    summary = "Rotate a webhook endpoint's secret",
    params(("id" = Uuid, Path, description = "webhook endpoint id")),
    responses((status = 200, description = "The endpoint and its new secret", body = WebhookEndpointWithSecret)),
    security(("api_key" = []))
)]
pub async fn rotate_secret(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = path_id(&id, ENDPOINT)?;
    let rotated = webhooks::rotate_secret(&http.app, &tenant, deadline, id).await?;
    Ok(sent(
        StatusCode::OK,
        &WebhookEndpointWithSecret::from(rotated),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}/deliveries",
    operation_id = "listWebhookDeliveries",
    description = "The endpoint's delivery attempts, newest first: the event, the status code or error, how long it took, when, and what came of it (delivered, retrying with the next attempt's time, gave_up, disabled).",
    tag = "webhooks",
    summary = "List a webhook endpoint's delivery attempts",
    params(("id" = Uuid, Path, description = "webhook endpoint id"), ListParams),
    responses((status = 200, description = "A page of attempts, newest first", body = WebhookAttemptList)),
    security(("api_key" = []))
)]
pub async fn deliveries(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let page = Query::parse(query.as_deref())?.created_page()?;
    let id = path_id(&id, ENDPOINT)?;
    let listed = webhooks::deliveries(&http.app, &tenant, deadline, id, page).await?;
    let page = WebhookAttemptList {
        data: listed.rows.into_iter().map(WebhookAttempt::from).collect(),
        next_cursor: listed.next.map(created_cursor),
    };
    Ok(sent(StatusCode::OK, &page))
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/replay",
    operation_id = "replayWebhookEvents",
    description = "Sends again every event with a sequence greater than `after` that the endpoint's filter takes, with its original id, in order per subject. Events not yet sent to the endpoint are sent once, as usual.",
    tag = "webhooks",
    summary = "Send a webhook endpoint's events again",
    request_body = ReplayRequest,
    params(("id" = Uuid, Path, description = "webhook endpoint id")),
    responses((status = 202, description = "Queued", body = Replayed)),
    security(("api_key" = []))
)]
pub async fn replay(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let request: ReplayRequest = body.parse()?;
    let id = path_id(&id, ENDPOINT)?;
    let after = request.after.0;
    let replayed = webhooks::replay(&http.app, &tenant, deadline, id, after).await?;
    let answer = Replayed {
        endpoint_id: id,
        after: i64::try_from(after).unwrap_or_default(),
        replayed,
    };
    Ok(sent(StatusCode::ACCEPTED, &answer))
}
