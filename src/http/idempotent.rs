//! The edge's half of "at most once per Idempotency-Key": how an answer is
//! stored (the status and body sent), how a replay is sent back (marked
//! `idempotent-replayed: true`), and refusals decided before the use case
//! runs (a malformed body) recorded under the key like any other.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::problem::{Problem, json_response};
use super::request::{Body, idempotency_key};
use crate::app::AppError;
use crate::app::idempotency::{Once, Outcome, StoredAnswer};
use crate::domain::IdempotencyKey;

/// A record the API answers with a fixed success status.
pub trait Answer: Sized + Clone {
    const STATUS: StatusCode;
    type View: Serialize + From<Self>;
}

/// How the edge answers a use case's result; `None` for answers that are
/// not definitive, which are never stored.
pub fn render<T: Answer>(result: &Result<T, AppError>) -> Option<StoredAnswer> {
    match result {
        Ok(value) => Some(StoredAnswer {
            status: T::STATUS.as_u16(),
            body: serde_json::to_value(T::View::from(value.clone()))
                .unwrap_or(serde_json::Value::Null),
        }),
        Err(error) if error.is_definitive() => {
            let problem = Problem::from(error.clone());
            Some(StoredAnswer {
                status: problem.status().as_u16(),
                body: problem.to_json(),
            })
        }
        Err(_) => None,
    }
}

/// The response for a use case's outcome.
pub fn respond<T: Answer>(outcome: Result<Outcome<T>, AppError>) -> Result<Response, Problem> {
    match outcome? {
        Outcome::Fresh(value) => Ok(sent(T::STATUS, &T::View::from(value))),
        Outcome::Replayed(stored) => {
            let status = StatusCode::from_u16(stored.status).map_err(|_| {
                AppError::Internal(format!("stored status {} is not a status", stored.status))
            })?;
            let mut response = json_response(status, &stored.body);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
    }
}

/// A success answer.
pub fn sent(status: StatusCode, view: &impl Serialize) -> Response {
    // Straight to bytes: a success has none of the headers `json_response`
    // adds to errors, and a `Value` between cost a tree built and dropped.
    (status, axum::Json(view)).into_response()
}

/// A request to a keyed route, read: its key (if any), its fingerprint
/// (computed only when a key was sent: nothing else reads it, and hashing
/// the canonical body was 16 % of the server's instructions per unkeyed
/// purchase, bench/results/20261203T2243Z-profile.md), and its input, or why the input could not be made (a malformed body, an
/// invalid value, an unknown id), which is answered and stored under the
/// key like the use case's own refusals, so the key cannot later be spent
/// on another request.
pub struct Keyed<I> {
    pub key: Option<IdempotencyKey>,
    pub fingerprint: Vec<u8>,
    pub input: Result<I, AppError>,
}

impl<I> Keyed<I> {
    pub fn new(
        headers: &HeaderMap,
        body: &Body,
        route: &str,
        input: Result<I, AppError>,
    ) -> Result<Self, Problem> {
        match idempotency_key(headers) {
            Ok(key) => Ok(Self {
                fingerprint: match key {
                    Some(_) => body.fingerprint(route),
                    None => Vec::new(),
                },
                key,
                input,
            }),
            // A malformed body is reported first (the contract's order), but
            // with no valid key there is nothing to store it under.
            Err(key_error) => Err(match input {
                Err(error @ AppError::Malformed(_)) => error,
                _ => key_error,
            }
            .into()),
        }
    }
}

/// The use case's view of the key.
pub fn once<'a, T: Answer>(key: &'a Option<IdempotencyKey>, fingerprint: &'a [u8]) -> Once<'a, T> {
    Once {
        key: key.as_ref(),
        fingerprint,
        render: render::<T>,
    }
}
