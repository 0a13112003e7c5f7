//! Operations endpoints (no auth): liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::HttpState;

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "The process is up",
    responses(
        (status = 200, description = "Up")
    )
)]
pub async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// The database answers; 503 otherwise, so a load balancer stops sending.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "The database is reachable",
    responses(
        (status = 200, description = "Ready"), (status = 503, description = "Database unreachable")
    )
)]
pub async fn readyz(State(http): State<HttpState>) -> Response {
    match http.app.db().ping().await {
        Ok(()) => axum::Json(json!({ "status": "ready" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}
