//! Prometheus metrics: requests and latency by route and status, purchase
//! outcomes (counted by the use cases), pool size and waiters, transaction
//! retries.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
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
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let count = |(requests, duration): &Series| {
        requests.increment(1);
        duration.record(seconds);
    };
    // Seen before (nearly always): counted under the read lock.
    if let Ok(known) = SERIES.read()
        && let Some(series) = find(&known, route, &method, status)
    {
        count(series);
        return response;
    }
    let labels = [
        ("method", method.to_string()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    let series = (
        metrics::counter!("ontab_http_requests_total", &labels),
        metrics::histogram!("ontab_http_request_duration_seconds", &labels),
    );
    count(&series);
    if let Ok(mut known) = SERIES.write()
        && find(&known, route, &method, status).is_none()
    {
        let list = known.entry(route.to_owned()).or_default();
        list.push((method, status, series));
    }
    response
}

/// A label set's counter and latency histogram.
type Series = (metrics::Counter, metrics::Histogram);

/// Every label set's series, by route, registered once. Looking each
/// request's up in the exporter's registry built three owned labels and a
/// key to hash, twice (3.1k of the server's 94k instructions per purchase,
/// bench/results/20261205T0236Z-profile.md). Bounded: routes are templates
/// (or `unmatched`), and methods and statuses are few.
static SERIES: LazyLock<RwLock<Known>> = LazyLock::new(RwLock::default);

type Known = HashMap<String, Vec<(Method, u16, Series)>>;

fn find<'a>(known: &'a Known, route: &str, method: &Method, status: u16) -> Option<&'a Series> {
    known
        .get(route)?
        .iter()
        .find_map(|(known_method, known_status, series)| {
            (known_method == method && *known_status == status).then_some(series)
        })
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
