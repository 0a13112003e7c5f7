//! Reading requests: JSON bodies, query strings, cursors, path ids and the
//! Idempotency-Key header, each failure mapped to the contract's code.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ApiError;
use crate::db::page::{CreatedKey, Page};
use crate::domain::FieldError;

/// A request body, read whole (within the size limit), parsed on demand.
pub struct Body(Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json_content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(is_json_media_type);
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection {
                    BytesRejection::FailedToBufferBody(_) if rejection.status() == 413 => {
                        ApiError::PayloadTooLarge
                    }
                    other => ApiError::Malformed(other.body_text()),
                })?;
        if !bytes.is_empty() && json_content_type != Some(true) {
            return Err(ApiError::Malformed(
                "Content-Type must be application/json".to_owned(),
            ));
        }
        Ok(Self(bytes))
    }
}

fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl Body {
    /// The body as `T`; wrong JSON, wrong types, unknown or duplicate fields
    /// are all `400 malformed_request`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.0.is_empty() {
            return Err(ApiError::Malformed("a JSON body is required".to_owned()));
        }
        // Every request body is an object; serde would also read a struct
        // from an array of its fields in order (`[null, null]`).
        if self.0.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::Malformed(
                "the JSON body must be an object".to_owned(),
            ));
        }
        serde_json::from_slice(&self.0)
            .map_err(|error| ApiError::Malformed(format!("invalid JSON body: {error}")))
    }

    /// What identifies "the same request" for an Idempotency-Key: the route
    /// and the body with insignificant whitespace and key order removed.
    pub fn fingerprint(&self, route: &str) -> Vec<u8> {
        let canonical = serde_json::from_slice::<serde_json::Value>(&self.0)
            .ok()
            .map(canonical_json)
            .and_then(|value| serde_json::to_vec(&value).ok())
            .unwrap_or_else(|| self.0.to_vec());
        let mut hash = Sha256::new();
        hash.update(route.as_bytes());
        hash.update([0]);
        hash.update(&canonical);
        hash.finalize().to_vec()
    }
}

/// The same JSON with every object's keys sorted.
fn canonical_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, canonical_json(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical_json).collect()),
        other => other,
    }
}

/// An id from the path. Anything that is not a UUID names nothing: 404.
pub fn path_id(raw: &str, resource: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::NotFound(format!("{resource} {raw} not found")))
}

/// The Idempotency-Key header: 1..=255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )]));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// `?limit=&cursor=` plus whatever filters an endpoint takes.
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let pairs = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|error| ApiError::Malformed(format!("invalid query string: {error}")))?;
        Ok(Self { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn limit(&self, errors: &mut Vec<FieldError>) -> i64 {
        match self.get("limit").map(str::parse::<i64>) {
            None => 50,
            Some(Ok(limit @ 1..=200)) => limit,
            Some(_) => {
                errors.push(FieldError::new("limit", "must be an integer from 1 to 200"));
                50
            }
        }
    }

    /// A page of a list ordered by creation.
    pub fn created_page(&self) -> Result<Page<CreatedKey>, ApiError> {
        let mut errors = Vec::new();
        let limit = self.limit(&mut errors);
        let after = match self.get("cursor") {
            None => None,
            Some(cursor) => decode_created_cursor(cursor).or_else(|| {
                errors.push(FieldError::new(
                    "cursor",
                    "is not a cursor returned by this list",
                ));
                None
            }),
        };
        if errors.is_empty() {
            Ok(Page { limit, after })
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    /// A page of a ledger, ordered by sequence number.
    pub fn seq_page(&self) -> Result<Page<i64>, ApiError> {
        let mut errors = Vec::new();
        let limit = self.limit(&mut errors);
        let after = match self.get("cursor") {
            None => None,
            Some(cursor) => decode_seq_cursor(cursor).or_else(|| {
                errors.push(FieldError::new(
                    "cursor",
                    "is not a cursor returned by this list",
                ));
                None
            }),
        };
        if errors.is_empty() {
            Ok(Page { limit, after })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

// Cursors are opaque to clients: base64url of "c.<micros>.<uuid>" or
// "s.<seq>". They carry only a position, so a cursor forged or taken from
// another business can reveal nothing: the query is still tenant-scoped.
pub fn created_cursor(key: CreatedKey) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "c.{}.{}",
        key.created_at.timestamp_micros(),
        key.id
    ))
}

pub fn seq_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("s.{seq}"))
}

fn decode_created_cursor(cursor: &str) -> Option<CreatedKey> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let mut parts = text.splitn(3, '.');
    (parts.next()? == "c").then_some(())?;
    let created_at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
    let id = Uuid::try_parse(parts.next()?).ok()?;
    Some(CreatedKey { created_at, id })
}

fn decode_seq_cursor(cursor: &str) -> Option<i64> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    text.strip_prefix("s.")?
        .parse()
        .ok()
        .filter(|seq: &i64| *seq >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let key = CreatedKey {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("valid time"),
            id: Uuid::now_v7(),
        };
        assert_eq!(decode_created_cursor(&created_cursor(key)), Some(key));
        assert_eq!(decode_seq_cursor(&seq_cursor(42)), Some(42));
        assert_eq!(decode_created_cursor(&seq_cursor(42)), None);
        assert_eq!(decode_created_cursor("not a cursor"), None);
        assert_eq!(decode_seq_cursor(&URL_SAFE_NO_PAD.encode("s.-1")), None);
    }

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace_but_not_values() {
        let a = Body(Bytes::from_static(br#"{"a": 1, "b": {"y": 2, "x": 3}}"#));
        let b = Body(Bytes::from_static(br#"{"b":{"x":3,"y":2},"a":1}"#));
        let c = Body(Bytes::from_static(br#"{"b":{"x":3,"y":2},"a":2}"#));
        assert_eq!(
            a.fingerprint("POST /v1/payments"),
            b.fingerprint("POST /v1/payments")
        );
        assert_ne!(
            a.fingerprint("POST /v1/payments"),
            c.fingerprint("POST /v1/payments")
        );
        assert_ne!(
            a.fingerprint("POST /v1/payments"),
            a.fingerprint("POST /v1/purchases")
        );
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
    }
}
