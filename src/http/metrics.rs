//! Prometheus metrics: requests and latency by route and status, purchase
//! outcomes (counted by the use cases), pool size and waiters, transaction
//! retries.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::HttpState;
use super::problem::Problem;

/// Latency buckets in seconds: sub-millisecond to the request timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder, installed on first use. `None` when another
/// recorder was installed first (then /metrics says so).
fn recorder() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Installs the recorder so counts start with the first request.
pub fn install() {
    let _ = recorder();
}

/// How often recorded histogram samples are folded into their buckets (the
/// exporter's own default when it runs its upkeep itself).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets, every
/// [`UPKEEP_EVERY`], for as long as the server runs. The exporter keeps
/// each sample until then, or until `/metrics` is read: a server nobody
/// scraped kept every request's latency and every event's delivery lag
/// (8 bytes and change each; 3.2 MB after four 8 s benchmark runs, by
/// heaptrack), growing for as long as it ran. `install_recorder` leaves
/// this to its caller.
pub async fn upkeep() {
    let Some(handle) = recorder() else {
        return;
    };
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

/// Counts every request by method, route template (never the raw path, so
/// ids do not explode the label space) and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("ontab_http_requests_total", &labels).increment(1);
    metrics::histogram!("ontab_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getMetrics",
    description = "Prometheus text: requests and latency by route and status, purchases by outcome, transaction retries, pool and connection gauges.",
    tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn render(State(http): State<HttpState>) -> Response {
    let Some(handle) = recorder() else {
        return Problem::new(
            crate::domain::ErrorCode::NotFound,
            "metrics are not recorded by this process",
        )
        .into_response();
    };
    let pool = http.app.db().pool_status();
    metrics::gauge!("ontab_db_pool_max_size").set(pool.max_size as f64);
    metrics::gauge!("ontab_db_pool_connections").set(pool.size as f64);
    metrics::gauge!("ontab_db_pool_idle").set(pool.available as f64);
    metrics::gauge!("ontab_db_pool_waiting").set(pool.waiting as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
