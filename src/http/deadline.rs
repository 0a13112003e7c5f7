//! The request's deadline: set when the request arrives, handed to every
//! use case, which enforces it up to COMMIT (`app::transaction`).
//!
//! There is deliberately no timeout layer that drops a handler's future: a
//! purchase whose COMMIT is in flight must wait for its answer, so the
//! deadline is enforced where the work is, not around it.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use super::HttpState;
use crate::app::Deadline;

/// The deadline of the request being handled.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub Deadline);

/// Stamps each request with its deadline as it arrives, and counts it
/// (`metrics::track`): one middleware for both, since each `from_fn` layer
/// costs every request a boxed service, a clone of the stack below it and
/// a clone of the state (~9k instructions, bench/results/20261203T2300Z-profile.md).
pub async fn stamp(State(http): State<HttpState>, mut request: Request, next: Next) -> Response {
    request
        .extensions_mut()
        .insert(RequestDeadline(Deadline::after(http.request_timeout)));
    super::metrics::track(request, next).await
}

impl<S: Send + Sync> FromRequestParts<S> for RequestDeadline {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        // Every routed request passes `stamp`; a generous fallback keeps a
        // router built without it from having no deadline at all.
        Ok(parts
            .extensions
            .get::<RequestDeadline>()
            .copied()
            .unwrap_or(RequestDeadline(Deadline::after(Duration::from_secs(30)))))
    }
}
