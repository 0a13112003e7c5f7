//! The HTTP edge: the route table, shared state, and the layers around it.
//! Each resource module parses a request, calls a use case (`crate::app`)
//! and maps its outcome; nothing else.

mod api_keys;
mod auth;
mod business;
mod businesses;
mod customers;
mod deadline;
mod events;
mod holds;
mod idempotent;
pub mod listener;
mod metrics;
mod openapi;
mod ops;
mod orders;
mod payments;
pub mod problem;
mod products;
mod purchases;
mod reports;
mod request;
mod statements;
mod views;
mod webhook_endpoints;
mod write_offs;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use problem::Problem;

pub use metrics::{install as install_metrics, upkeep as metrics_upkeep};

/// What every handler can reach.
#[derive(Clone)]
pub struct HttpState {
    pub app: Arc<App>,
    /// Each request's budget; see `deadline`.
    pub request_timeout: Duration,
}

/// The whole API as one service, ready to serve or to drive with `oneshot`
/// in tests.
pub type Api = BoxCloneSyncService<Request, Response, Infallible>;

/// The whole API: the routes, and around them the layers every request
/// passes.
///
/// Only `deadline::stamp` is a layer of the router itself, since it needs
/// the matched route (the metrics' label). The others wrap the router from
/// outside, once: `Router::layer` wraps every route's service in a boxed
/// service per layer, and each request cloned that chain box by box (28
/// boxed clones and 8 boxed futures per purchase, some 10k instructions of
/// the server's 123k, bench/results/20261205T0208Z-profile.md).
pub fn router(state: HttpState, body_limit: usize) -> Api {
    // Counting starts with the first request, whoever builds the router.
    metrics::install();
    let (api, mut document) = api_routes().split_for_parts();
    openapi::finish(&mut document);
    let request_id = HeaderName::from_static("x-request-id");
    let rendered = openapi::Rendered::new(&document);
    let routes = api
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            deadline::stamp,
        ))
        .with_state(state);
    // The first layer listed is the outermost: it sees the request first.
    let layered = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        // One access line per request at info, inside the request's span
        // (so it carries the id); headers are not logged.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::custom(|_| {
            Problem::from(crate::app::AppError::Internal("handler panicked".into())).into_response()
        }))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::Extension(rendered))
        .service(routes)
        .map_response(IntoResponse::into_response);
    BoxCloneSyncService::new(layered)
}

/// The route table: each handler's `#[utoipa::path]` gives both its route
/// and its part of the OpenAPI document.
fn api_routes() -> OpenApiRouter<HttpState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(businesses::create))
        .routes(routes!(business::get, business::update))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(customers::create, customers::list))
        .routes(routes!(customers::get, customers::update))
        .routes(routes!(customers::ledger))
        .routes(routes!(customers::history))
        .routes(routes!(statements::get))
        .routes(routes!(write_offs::create))
        .routes(routes!(products::create, products::list))
        .routes(routes!(products::get, products::update))
        .routes(routes!(products::adjust_stock))
        .routes(routes!(purchases::create))
        .routes(routes!(payments::create))
        .routes(routes!(orders::list))
        .routes(routes!(orders::get))
        .routes(routes!(orders::create_return))
        .routes(routes!(holds::create, holds::list))
        .routes(routes!(holds::get))
        .routes(routes!(holds::capture))
        .routes(routes!(holds::void))
        .routes(routes!(reports::overdue))
        .routes(routes!(events::list))
        .routes(routes!(webhook_endpoints::create, webhook_endpoints::list))
        .routes(routes!(
            webhook_endpoints::get,
            webhook_endpoints::update,
            webhook_endpoints::delete
        ))
        .routes(routes!(webhook_endpoints::rotate_secret))
        .routes(routes!(webhook_endpoints::deliveries))
        .routes(routes!(webhook_endpoints::replay))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(metrics::render))
        .routes(routes!(openapi::serve))
}

/// Every log line of a request carries its id (also echoed in the
/// x-request-id response header). The query string is left out: nothing
/// secret belongs there, but nothing useful to the log does either.
fn request_span(request: &axum::extract::Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id = %request_id, method = %request.method(), path = %request.uri().path())
}

/// No such route, or no such method on it: both name nothing.
async fn unknown_route() -> Problem {
    Problem::no_such_route()
}
