//! Who is calling: a business (by API key) or the operator (by admin token).
//! The tenant is an extractor, so a handler that touches tenant data cannot
//! be written without one, and it comes from the key and nothing else.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::error::INVALID_API_KEY;
use super::{ApiError, AppState};
use crate::domain::api_key::ApiKey;

/// The business an API key belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Tenant {
    pub business_id: Uuid,
    pub key_id: Uuid,
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    /// The key's record usually comes from the process's cache, so this
    /// alone does not prove the key is still live: the transaction every
    /// tenant request runs in checks that when it begins (`Db::begin`).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized(
            "missing Authorization: Bearer <API key>",
        ))?;
        let key = ApiKey::parse(token).ok_or(ApiError::Unauthorized(INVALID_API_KEY))?;
        let Some(record) = state.db.api_key(key.id).await? else {
            return Err(ApiError::Unauthorized(INVALID_API_KEY));
        };
        // Constant-time, so response timing says nothing about how much of a
        // guessed secret was right.
        if !bool::from(key.secret_sha256().ct_eq(&record.secret_sha256)) {
            return Err(ApiError::Unauthorized(INVALID_API_KEY));
        }
        Ok(Tenant {
            business_id: record.business_id,
            key_id: key.id,
        })
    }
}

/// The operator, holding ONTAB_ADMIN_TOKEN.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

/// The admin token as stored in the state: only its hash, compared in
/// constant time.
pub fn admin_token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.admin_token_sha256 else {
            return Err(ApiError::Unauthorized(
                "the admin endpoint is disabled: set ONTAB_ADMIN_TOKEN",
            ));
        };
        let token = bearer(parts).ok_or(ApiError::Unauthorized(
            "missing Authorization: Bearer <admin token>",
        ))?;
        if bool::from(admin_token_hash(token).ct_eq(&expected)) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized("invalid admin token"))
        }
    }
}
