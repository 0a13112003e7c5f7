//! Reading requests: JSON bodies, query strings, cursors, path ids and the
//! Idempotency-Key header, each failure mapped to the contract's code.

use std::borrow::Cow;
use std::fmt;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::deadline::RequestDeadline;
use super::problem::Problem;
use crate::app::AppError;
use crate::app::page::{CreatedKey, Page};
use crate::domain::{FieldError, IdempotencyKey};

/// A request body, read whole (within the size limit and the request's
/// deadline), parsed on demand.
pub struct Body(Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let json_content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(is_json_media_type);
        let deadline = request
            .extensions()
            .get::<RequestDeadline>()
            .map(|deadline| deadline.0);
        let read = Bytes::from_request(request, state);
        let read = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.instant(), read)
                .await
                .map_err(|_| {
                    Problem::from(AppError::Unavailable(
                        "the request body did not arrive before the request's deadline".into(),
                    ))
                })?,
            None => read.await,
        };
        let bytes = read.map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(_) if rejection.status() == 413 => {
                Problem::payload_too_large()
            }
            other => AppError::Malformed(other.body_text()).into(),
        })?;
        if !bytes.is_empty() && json_content_type != Some(true) {
            return Err(AppError::Malformed("Content-Type must be application/json".into()).into());
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
    /// The body as `T`; wrong JSON, wrong types, unknown fields, and a key
    /// given twice in any object at any depth are all `malformed_request`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, AppError> {
        self.parse_checked(true)
    }

    /// [`Body::parse`] for a type whose objects serde's derive reads, all
    /// of them: the derive refuses a field given twice by itself, so the
    /// separate pass over the body for repeated keys is left out (5k of the
    /// server's 102k instructions per purchase,
    /// bench/results/20261205T0227Z-profile.md).
    pub fn parse_derived<T: DerivedObjects>(&self) -> Result<T, AppError> {
        self.parse_checked(false)
    }

    fn parse_checked<T: DeserializeOwned>(&self, repeated_keys: bool) -> Result<T, AppError> {
        if self.0.is_empty() {
            return Err(AppError::Malformed("a JSON body is required".into()));
        }
        // Every request body is an object; serde would also read a struct
        // from an array of its fields in order (`[null, null]`).
        if self.0.trim_ascii_start().first() != Some(&b'{') {
            return Err(AppError::Malformed(
                "the JSON body must be an object".into(),
            ));
        }
        // serde_json keeps the last of two equal keys of a map; a request
        // that says two things at once must not be read as either.
        if repeated_keys {
            serde_json::from_slice::<UniqueKeys>(&self.0)
                .map_err(|error| AppError::Malformed(format!("invalid JSON body: {error}")))?;
        }
        serde_json::from_slice(&self.0)
            .map_err(|error| AppError::Malformed(format!("invalid JSON body: {error}")))
    }

    /// A body whose every member is optional: none at all reads as `{}`.
    pub fn parse_or_empty<T: DeserializeOwned + Default>(&self) -> Result<T, AppError> {
        if self.0.is_empty() {
            return Ok(T::default());
        }
        self.parse()
    }

    /// What identifies "the same request" for an Idempotency-Key: the route
    /// and the body with insignificant whitespace and key order removed (no
    /// body at all being `{}`). A body with a key given twice is taken byte
    /// for byte: read as a value it would lose one of them and pass for the
    /// valid body it is not (its stored 400 would then answer that body).
    pub fn fingerprint(&self, route: &str) -> Vec<u8> {
        let body: &[u8] = if self.0.is_empty() { b"{}" } else { &self.0 };
        let canonical = serde_json::from_slice::<Canonical>(body)
            .ok()
            .and_then(|value| serde_json::to_vec(&value.0).ok())
            .unwrap_or_else(|| body.to_vec());
        let mut hash = Sha256::new();
        hash.update(route.as_bytes());
        hash.update([0]);
        hash.update(&canonical);
        hash.finalize().to_vec()
    }
}

/// A request body type every object of which is read by serde's derive
/// with `deny_unknown_fields`: no map, no `serde_json::Value`, no
/// `flatten`, so a field given twice is refused wherever it is
/// ("duplicate field"). Implement it only for such types, with a test that
/// a repeated key at each depth is refused.
pub trait DerivedObjects: DeserializeOwned {}

/// A JSON value with every object's keys sorted, read in one pass that
/// also refuses a key given twice (checking first and then reading a
/// `Value` read the body twice). Serialized, it is the same bytes as
/// before, so fingerprints stored by earlier versions still match.
struct Canonical(serde_json::Value);

impl<'de> Deserialize<'de> for Canonical {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CanonicalVisitor)
    }
}

struct CanonicalVisitor;

impl<'de> Visitor<'de> for CanonicalVisitor {
    type Value = Canonical;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Canonical, A::Error> {
        let mut entries: Vec<(String, serde_json::Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Canonical>()?.0;
            entries.push((key, value));
        }
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        refuse_repeated(entries.iter().map(|(key, _)| key.as_str()))?;
        Ok(Canonical(serde_json::Value::Object(
            entries.into_iter().collect(),
        )))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Canonical, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Canonical>()? {
            items.push(item.0);
        }
        Ok(Canonical(serde_json::Value::Array(items)))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Canonical, E> {
        Ok(Canonical(value.into()))
    }
    fn visit_i64<E>(self, value: i64) -> Result<Canonical, E> {
        Ok(Canonical(value.into()))
    }
    fn visit_u64<E>(self, value: u64) -> Result<Canonical, E> {
        Ok(Canonical(value.into()))
    }
    fn visit_f64<E>(self, value: f64) -> Result<Canonical, E> {
        // As serde_json's own Value does: a non-finite number is null.
        Ok(Canonical(
            serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, Into::into),
        ))
    }
    fn visit_str<E>(self, value: &str) -> Result<Canonical, E> {
        Ok(Canonical(value.into()))
    }
    fn visit_string<E>(self, value: String) -> Result<Canonical, E> {
        Ok(Canonical(value.into()))
    }
    fn visit_unit<E>(self) -> Result<Canonical, E> {
        Ok(Canonical(serde_json::Value::Null))
    }
}

/// Refuses an object whose keys, given sorted, repeat one.
fn refuse_repeated<'k, E: de::Error>(sorted: impl Iterator<Item = &'k str>) -> Result<(), E> {
    let mut previous = None;
    for key in sorted {
        if previous == Some(key) {
            return Err(E::custom(format_args!("duplicate key `{key}`")));
        }
        previous = Some(key);
    }
    Ok(())
}

/// Any JSON value in which no object repeats a key.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        // Keys borrowed from the body where they have no escapes, sorted and
        // compared side by side as `Canonical` does: no allocation per key
        // and no hashing for the handful of keys an object has, and still
        // n log n for a body of many (this pass was 7.8k of the server's
        // 123k instructions per purchase, bench/results/20261205T0208Z-profile.md).
        let mut keys: Vec<Key<'de>> = Vec::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            keys.push(key);
            map.next_value::<UniqueKeys>()?;
        }
        keys.sort_unstable();
        refuse_repeated(keys.iter().map(|key| &*key.0))?;
        Ok(UniqueKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
}

/// An object's key, borrowed from the body unless it had to be unescaped
/// (serde's `borrow` on a `Cow` does exactly that).
#[derive(Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON integer as sent, possibly beyond i64: a quantity of 2^63 is a
/// value to refuse with its reason (`422`), not an unreadable body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireInt(pub i128);

impl<'de> Deserialize<'de> for WireInt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WireIntVisitor)
    }
}

struct WireIntVisitor;

impl Visitor<'_> for WireIntVisitor {
    type Value = WireInt;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E>(self, value: i64) -> Result<WireInt, E> {
        Ok(WireInt(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<WireInt, E> {
        Ok(WireInt(value.into()))
    }

    /// serde_json reads an integer literal beyond u64 as a float; only
    /// those (whole, and too large for i64) are integers out of range. Any
    /// other float (`1.5`, `2.0`) is not an integer at all.
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<WireInt, E> {
        if value.fract() == 0.0 && value.abs() >= 9.223_372_036_854_776e18 {
            // `as` saturates: the value is out of range either way.
            Ok(WireInt(value as i128))
        } else {
            Err(de::Error::invalid_type(de::Unexpected::Float(value), &self))
        }
    }
}

/// `deserialize_with` of a PATCH field: absent is `None` (via `default`),
/// null is `Some(None)`, a value is `Some(Some(value))`, so that "leave it"
/// and "set it to null" are told apart.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// An id from the path. Anything that is not a UUID names nothing: 404.
pub fn path_id(raw: &str, resource: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(raw).map_err(|_| crate::domain::Refusal::not_found(resource, raw).into())
}

/// The Idempotency-Key header, if sent: once, 1..=255 visible ASCII
/// characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, AppError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(FieldError::new("Idempotency-Key", "must be sent once").into());
    }
    Ok(Some(IdempotencyKey::parse(
        "Idempotency-Key",
        value.as_bytes(),
    )?))
}

/// `?limit=&cursor=` plus whatever filters an endpoint takes.
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Self, AppError> {
        let pairs = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|error| AppError::Malformed(format!("invalid query string: {error}")))?;
        Ok(Self { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A UUID filter such as `?customer_id=`.
    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, AppError> {
        self.get(name)
            .map(|raw| {
                Uuid::try_parse(raw).map_err(|_| FieldError::new(name, "must be a UUID").into())
            })
            .transpose()
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

    fn page<K>(&self, decode: impl Fn(&str) -> Option<K>) -> Result<Page<K>, AppError> {
        let mut errors = Vec::new();
        let limit = self.limit(&mut errors);
        let after = self.get("cursor").and_then(|cursor| {
            let decoded = decode(cursor);
            if decoded.is_none() {
                errors.push(FieldError::new(
                    "cursor",
                    "is not a cursor returned by this list",
                ));
            }
            decoded
        });
        if errors.is_empty() {
            Ok(Page { limit, after })
        } else {
            Err(AppError::Invalid(errors))
        }
    }

    /// A page of a list ordered by creation.
    pub fn created_page(&self) -> Result<Page<CreatedKey>, AppError> {
        self.page(decode_created_cursor)
    }

    /// A page of a ledger, ordered by sequence number.
    pub fn seq_page(&self) -> Result<Page<i64>, AppError> {
        self.page(decode_seq_cursor)
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

/// Cursor times PostgreSQL can compare with: years 1 to 9999, a subset of
/// both chrono's and PostgreSQL's ranges, and every real row's time. A
/// forged cursor beyond them is a bad cursor, never a database error.
const CURSOR_MICROS: std::ops::RangeInclusive<i64> =
    -62_135_596_800_000_000..=253_402_300_799_999_999;

fn decode_created_cursor(cursor: &str) -> Option<CreatedKey> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let mut parts = text.splitn(3, '.');
    (parts.next()? == "c").then_some(())?;
    let micros: i64 = parts.next()?.parse().ok()?;
    let created_at = CURSOR_MICROS
        .contains(&micros)
        .then(|| DateTime::from_timestamp_micros(micros))??;
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
    fn cursor_times_outside_years_1_to_9999_are_refused() {
        let forged = |micros: i64| URL_SAFE_NO_PAD.encode(format!("c.{micros}.{}", Uuid::nil()));
        // Before 4713 BC: PostgreSQL's timestamptz cannot hold it.
        assert_eq!(
            decode_created_cursor(&forged(-210_866_803_200_000_001)),
            None
        );
        assert_eq!(decode_created_cursor(&forged(i64::MIN)), None);
        assert_eq!(decode_created_cursor(&forged(i64::MAX)), None);
        assert!(decode_created_cursor(&forged(0)).is_some());
    }

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace_but_not_values() {
        let a = Body(Bytes::from_static(br#"{"a": 1, "b": {"y": 2, "x": 3}}"#));
        let b = Body(Bytes::from_static(br#"{"b":{"x":3,"y":2},"a":1}"#));
        let c = Body(Bytes::from_static(br#"{"b":{"x":3,"y":2},"a":2}"#));
        let route = "POST /v1/payments";
        assert_eq!(a.fingerprint(route), b.fingerprint(route));
        assert_ne!(a.fingerprint(route), c.fingerprint(route));
        assert_ne!(a.fingerprint(route), a.fingerprint("POST /v1/purchases"));
    }

    #[test]
    fn fingerprints_are_the_bytes_earlier_versions_stored() {
        // sha256("POST /v1/purchases\0" + the body with keys sorted at every
        // depth, compact), computed outside this code: an idempotency record
        // stored before an upgrade must still match its retry after it.
        let body = Body(Bytes::from(
            r#"{"b": {"y": 2, "x": [{"z": 1, "a": "é"}]}, "a": 1}"#.as_bytes(),
        ));
        let hex: String = body
            .fingerprint("POST /v1/purchases")
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            hex,
            "aba77f87ce542a63ec32d4ae66501f5fea4aba9d190bf204142dcac9b6cb9dc9"
        );
    }

    #[test]
    fn a_body_with_a_duplicate_key_is_not_the_body_it_would_read_as() {
        let doubled = Body(Bytes::from_static(br#"{"amount": 1, "amount": 100}"#));
        let single = Body(Bytes::from_static(br#"{"amount": 100}"#));
        let route = "POST /v1/payments";
        assert_ne!(doubled.fingerprint(route), single.fingerprint(route));
        assert_eq!(doubled.fingerprint(route), doubled.fingerprint(route));
        // Taken byte for byte, as before: its hash is of the route and the raw body.
        let mut raw = Sha256::new();
        raw.update(route.as_bytes());
        raw.update([0]);
        raw.update(br#"{"amount": 1, "amount": 100}"#);
        assert_eq!(doubled.fingerprint(route), raw.finalize().to_vec());
        let nested = Body(Bytes::from_static(br#"{"a": [{"q": 1, "q": 1}]}"#));
        assert_ne!(
            nested.fingerprint(route),
            Body(Bytes::from_static(br#"{"a": [{"q": 1}]}"#)).fingerprint(route)
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_every_depth() {
        let parse = |raw: &'static [u8]| Body(Bytes::from_static(raw)).parse::<serde_json::Value>();
        assert!(parse(br#"{"a": 1, "b": [{"q": 1}, {"q": 2}]}"#).is_ok());
        assert!(parse(br#"{"a": 1, "a": 2}"#).is_err());
        assert!(parse(br#"{"items": [{"quantity": 1, "quantity": 5}]}"#).is_err());
        assert!(parse(br#"{"x": {"y": {"z": 1, "z": 1}}}"#).is_err());
    }

    #[test]
    fn wire_integers_keep_values_beyond_i64_and_refuse_fractions() {
        let read = |raw: &str| serde_json::from_str::<WireInt>(raw).map(|int| int.0);
        assert_eq!(read("12").ok(), Some(12));
        assert_eq!(read("-9007199254740992").ok(), Some(-9_007_199_254_740_992));
        assert_eq!(read("18446744073709551615").ok(), Some(u64::MAX.into()));
        assert!(read("99999999999999999999").is_ok_and(|value| value > i64::MAX.into()));
        assert!(read("1.5").is_err());
        assert!(read("2.0").is_err());
        assert!(read("\"12\"").is_err());
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
    }

    #[test]
    fn keys_are_borrowed_from_the_body_unless_escaped() {
        let plain: Key<'_> = serde_json::from_str(r#""customer_id""#).expect("a key");
        assert!(matches!(plain.0, Cow::Borrowed("customer_id")));
        let escaped: Key<'_> = serde_json::from_str(r#""customer\u005fid""#).expect("a key");
        assert!(matches!(escaped.0, Cow::Owned(ref key) if key == "customer_id"));
    }

    /// `parse_derived` leaves out the pass for repeated keys: for a
    /// purchase, the derive must refuse them at every depth, as `parse`
    /// does, and read what `parse` reads.
    #[test]
    fn a_purchase_with_a_key_given_twice_is_refused_at_every_depth() {
        use super::super::purchases::PurchaseRequest;
        let (customer, product) = (Uuid::now_v7(), Uuid::now_v7());
        let body = |text: String| Body(Bytes::from(text));
        let line = format!(r#"{{"product_id": "{product}", "quantity": 2}}"#);
        let valid = body(format!(
            r#"{{"customer_id": "{customer}", "items": [{line}]}}"#
        ));
        let read = valid
            .parse_derived::<PurchaseRequest>()
            .expect("a valid purchase");
        assert_eq!(read.customer_id, customer);
        assert_eq!(read.items.len(), 1);
        assert!(valid.parse::<PurchaseRequest>().is_ok());
        for repeated in [
            format!(
                r#"{{"customer_id": "{customer}", "items": [{line}], "customer_id": "{customer}"}}"#
            ),
            format!(r#"{{"customer_id": "{customer}", "items": [{line}], "items": [{line}]}}"#),
            format!(
                r#"{{"customer_id": "{customer}", "items": [{{"product_id": "{product}", "quantity": 2, "quantity": 1}}]}}"#
            ),
            format!(
                r#"{{"customer_id": "{customer}", "items": [{{"product_id": "{product}", "product_id": "{product}", "quantity": 1}}]}}"#
            ),
            // An escaped key names the same field.
            format!(
                r#"{{"customer_id": "{customer}", "items": [{line}], "customer\u005fid": "{customer}"}}"#
            ),
        ] {
            for parsed in [
                body(repeated.clone()).parse_derived::<PurchaseRequest>(),
                body(repeated.clone()).parse::<PurchaseRequest>(),
            ] {
                assert!(
                    matches!(parsed, Err(AppError::Malformed(_))),
                    "{repeated} must be refused"
                );
            }
        }
        // A line must still be an object, not its fields in order.
        let as_array = body(format!(
            r#"{{"customer_id": "{customer}", "items": [["{product}", 2]]}}"#
        ));
        assert!(matches!(
            as_array.parse_derived::<PurchaseRequest>(),
            Err(AppError::Malformed(_))
        ));
    }
}
