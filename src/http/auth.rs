//! Who is calling: a business (by API key) or the operator (by admin token).
//! The tenant is an extractor, so a handler that touches tenant data cannot
//! be written without one, and it comes from the key and nothing else.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::HttpState;
use super::deadline::RequestDeadline;
use super::problem::Problem;
use crate::app::{self, AppError};

/// The business an API key acts for.
#[derive(Debug, Clone, Copy)]
pub struct Tenant(pub app::Tenant);

/// The bearer token, if exactly one Authorization header carries one. Two
/// Authorization headers are ambiguous credentials: refused, not guessed.
fn bearer(parts: &Parts) -> Result<Option<&str>, AppError> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AppError::Unauthorized("more than one Authorization header"));
    }
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    Ok(token)
}

impl FromRequestParts<HttpState> for Tenant {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, http: &HttpState) -> Result<Self, Problem> {
        let RequestDeadline(deadline) = RequestDeadline::from_request_parts(parts, http)
            .await
            .unwrap_or_else(|never| match never {});
        let token = bearer(parts)?.ok_or(AppError::Unauthorized(
            "missing Authorization: Bearer <API key>",
        ))?;
        Ok(Tenant(http.app.authenticate(token, deadline).await?))
    }
}

/// The operator, holding ONTAB_ADMIN_TOKEN.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<HttpState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, http: &HttpState) -> Result<Self, Problem> {
        http.app.authenticate_admin(bearer(parts)?)?;
        Ok(Admin)
    }
}
