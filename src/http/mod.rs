//! The HTTP edge: the route table, shared state, and the layers around it.

mod api_keys;
pub mod auth;
pub mod batch;
pub mod businesses;
mod customers;
mod error;
mod idempotent;
pub mod listener;
pub mod metrics;
mod openapi;
mod ops;
mod orders;
mod payments;
mod products;
mod purchases;
mod reports;
pub mod request;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

use crate::db::{Db, DbError};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// SHA-256 of ONTAB_ADMIN_TOKEN; `None` disables the admin endpoint.
    pub admin_token_sha256: Option<[u8; 32]>,
    pub request_timeout: Duration,
    /// Group commit of purchases; `None` runs each in its own transaction.
    pub batcher: Option<std::sync::Arc<batch::Batcher>>,
}

/// The whole API, ready to serve or to drive with `oneshot` in tests.
pub fn router(state: AppState, body_limit: usize) -> Router {
    // Counting starts with the first request, whoever builds the router.
    metrics::install();
    let (api, document) = api_routes().split_for_parts();
    let request_id = HeaderName::from_static("x-request-id");
    // Serializing a document built from our own types cannot fail short of
    // a bug; serve an empty object rather than refuse to start.
    let rendered = openapi::Rendered::new(&document).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot render the OpenAPI document");
        openapi::Rendered::empty()
    });
    api.fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .layer(axum::Extension(rendered))
        .layer(middleware::from_fn(metrics::track))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Database(DbError::Decode("handler panicked".into())).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        // One access line per request at info, inside the request's span
        // (so it carries the id); headers are not logged.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .with_state(state)
}

/// The route table: each handler's `#[utoipa::path]` gives both its route
/// and its part of the OpenAPI document.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(businesses::create))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(customers::create, customers::list))
        .routes(routes!(customers::get, customers::update))
        .routes(routes!(customers::ledger))
        .routes(routes!(products::create, products::list))
        .routes(routes!(products::get, products::update))
        .routes(routes!(products::adjust_stock))
        .routes(routes!(purchases::create))
        .routes(routes!(payments::create))
        .routes(routes!(orders::list))
        .routes(routes!(orders::get))
        .routes(routes!(orders::create_return))
        .routes(routes!(reports::overdue))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(metrics::render))
        .routes(routes!(openapi::serve))
}

/// The OpenAPI document, e.g. for `ontab openapi` or tests.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// A request that outlives the timeout is answered 503 (safe to retry: an
/// unfinished transaction is rolled back when its future is dropped).
async fn deadline(State(app): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(app.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Every log line of a request carries its id (also echoed in the
/// x-request-id response header). The query string is left out: nothing
/// secret belongs there, but nothing useful to the log does either.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id = %request_id, method = %request.method(), path = %request.uri().path())
}

/// No such route, or no such method on it: both name nothing.
async fn unknown_route() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

/// `{"data": [...], "next_cursor": ...}`.
fn list_response<T: Serialize>(data: Vec<T>, next_cursor: Option<String>) -> Response {
    #[derive(Serialize)]
    struct List<T> {
        data: Vec<T>,
        next_cursor: Option<String>,
    }
    axum::Json(List { data, next_cursor }).into_response()
}

/// A record as the JSON stored for Idempotency-Key replays.
fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value)
        .map_err(|error| ApiError::Database(DbError::Decode(error.to_string())))
}
