//! Operations endpoints (no auth): liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::HttpState;
use super::idempotent::sent;
use super::views::{Health, Readiness, Ready, Up};

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "getHealth",
    description = "Answers while the process runs; no database involved.",
    tag = "operations",
    summary = "The process is up",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub async fn healthz() -> Response {
    sent(StatusCode::OK, &Health { status: Up::Ok })
}

/// The database answers; 503 otherwise, so a load balancer stops sending.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "getReadiness",
    description = "Answers 200 while the database answers, 503 otherwise, so a load balancer stops sending.",
    tag = "operations",
    summary = "The database is reachable",
    responses((status = 200, description = "The database answers", body = Readiness), (status = 503, description = "The database does not answer", body = Readiness))
)]
pub async fn readyz(State(http): State<HttpState>) -> Response {
    match http.app.db().ping().await {
        Ok(()) => sent(
            StatusCode::OK,
            &Readiness {
                status: Ready::Ready,
            },
        ),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            // Not a problem document: a load balancer reads the status code.
            let status = Readiness {
                status: Ready::Unavailable,
            };
            let mut response = sent(StatusCode::SERVICE_UNAVAILABLE, &status);
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}
