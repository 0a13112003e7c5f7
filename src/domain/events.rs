//! Events: the changes a business reacts to, their types and the feed's
//! query rules.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::FieldError;

/// The kinds of event, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    CustomerCreated,
    CustomerUpdated,
    ProductCreated,
    ProductUpdated,
    StockAdjusted,
    PurchaseCreated,
    PaymentRecorded,
    ReturnRecorded,
    WriteOffRecorded,
    HoldCreated,
    HoldCaptured,
    HoldVoided,
    HoldExpired,
    CustomerOverdue,
}

impl EventType {
    /// Every type, in the contract's order.
    pub const ALL: [EventType; 14] = [
        EventType::CustomerCreated,
        EventType::CustomerUpdated,
        EventType::ProductCreated,
        EventType::ProductUpdated,
        EventType::StockAdjusted,
        EventType::PurchaseCreated,
        EventType::PaymentRecorded,
        EventType::ReturnRecorded,
        EventType::WriteOffRecorded,
        EventType::HoldCreated,
        EventType::HoldCaptured,
        EventType::HoldVoided,
        EventType::HoldExpired,
        EventType::CustomerOverdue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CustomerCreated => "customer.created",
            EventType::CustomerUpdated => "customer.updated",
            EventType::ProductCreated => "product.created",
            EventType::ProductUpdated => "product.updated",
            EventType::StockAdjusted => "stock.adjusted",
            EventType::PurchaseCreated => "purchase.created",
            EventType::PaymentRecorded => "payment.recorded",
            EventType::ReturnRecorded => "return.recorded",
            EventType::WriteOffRecorded => "write_off.recorded",
            EventType::HoldCreated => "hold.created",
            EventType::HoldCaptured => "hold.captured",
            EventType::HoldVoided => "hold.voided",
            EventType::HoldExpired => "hold.expired",
            EventType::CustomerOverdue => "customer.overdue",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event as stored: `data` is the resource as the API showed it then.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub sequence: i64,
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub subject_id: Uuid,
    pub data: EventData,
}

/// An event's `data` as PostgreSQL wrote it (jsonb's text), handed on to
/// the feed, webhooks and NATS as it is. Parsing it into a
/// `serde_json::Value` and writing that out again cost a sixth of what a
/// delivered event adds to the server's instructions
/// (bench/results/20261204T1427Z-profile.md); the text is only checked to
/// be one JSON value.
pub type EventData = Box<serde_json::value::RawValue>;

/// Most events a page returns.
pub const MAX_PAGE: i64 = 200;
/// Events a page returns unless told.
pub const DEFAULT_PAGE: i64 = 50;
/// Longest a reader may ask to wait for a newer event, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 30;

/// A valid feed request: events after `after`, at most `limit`, of `types`
/// (all when `None`), waiting up to `wait_seconds` when there is none yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRequest {
    pub after: i64,
    pub limit: i64,
    pub types: Option<Vec<EventType>>,
    pub wait_seconds: u64,
}

impl FeedRequest {
    /// Checks each parameter, reporting every invalid one: `after` an
    /// integer >= 0 (default 0), `limit` 1..=200 (default 50), `types` a
    /// comma-separated list of known types, `wait` 0..=30 seconds.
    pub fn parse(
        after: Option<&str>,
        limit: Option<&str>,
        types: Option<&str>,
        wait: Option<&str>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let after = match after.map(str::parse::<i64>) {
            None => 0,
            // Sequences are JSON numbers on the wire, so within 2^53 - 1.
            Some(Ok(after @ 0..=super::MAX_SAFE_INTEGER)) => after,
            Some(_) => {
                errors.push(FieldError::new(
                    "after",
                    "must be an integer from 0 to 9007199254740991 (a sequence, or the previous next_after)",
                ));
                0
            }
        };
        let limit = match limit.map(str::parse::<i64>) {
            None => DEFAULT_PAGE,
            Some(Ok(limit @ 1..=MAX_PAGE)) => limit,
            Some(_) => {
                errors.push(FieldError::new("limit", "must be an integer from 1 to 200"));
                DEFAULT_PAGE
            }
        };
        let types = types.map(|list| {
            let mut parsed = Vec::new();
            for name in list.split(',') {
                match EventType::parse(name) {
                    Some(kind) if !parsed.contains(&kind) => parsed.push(kind),
                    Some(_) => {}
                    None => errors.push(FieldError::new(
                        "types",
                        format!("`{name}` is not an event type (comma-separated, e.g. purchase.created,payment.recorded)"),
                    )),
                }
            }
            parsed
        });
        let wait_seconds = match wait.map(str::parse::<u64>) {
            None => 0,
            Some(Ok(wait @ 0..=MAX_WAIT_SECONDS)) => wait,
            Some(_) => {
                errors.push(FieldError::new(
                    "wait",
                    "must be an integer from 0 to 30 (seconds)",
                ));
                0
            }
        };
        if errors.is_empty() {
            Ok(Self {
                after,
                limit,
                types,
                wait_seconds,
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("purchase.deleted"), None);
    }

    #[test]
    fn feed_defaults_are_from_the_start_fifty_no_wait() {
        let request = FeedRequest::parse(None, None, None, None).expect("defaults are valid");
        assert_eq!(
            request,
            FeedRequest {
                after: 0,
                limit: 50,
                types: None,
                wait_seconds: 0
            }
        );
    }

    #[test]
    fn feed_reports_every_invalid_parameter() {
        let errors = FeedRequest::parse(Some("-1"), Some("201"), Some("x.y"), Some("31"))
            .expect_err("all four are invalid");
        let fields: Vec<_> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(fields, ["after", "limit", "types", "wait"]);
        let beyond = FeedRequest::parse(Some("9007199254740992"), None, Some(""), None)
            .expect_err("after beyond 2^53 - 1 and an empty type list");
        let fields: Vec<_> = beyond.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(fields, ["after", "types"]);
        let edge = FeedRequest::parse(Some("9007199254740991"), None, None, None);
        assert_eq!(
            edge.map(|request| request.after).ok(),
            Some(9007199254740991)
        );
    }

    #[test]
    fn feed_types_are_a_comma_separated_set() {
        let request = FeedRequest::parse(
            None,
            None,
            Some("payment.recorded,purchase.created,payment.recorded"),
            None,
        )
        .expect("known types");
        assert_eq!(
            request.types,
            Some(vec![EventType::PaymentRecorded, EventType::PurchaseCreated])
        );
        assert!(FeedRequest::parse(None, None, Some(""), None).is_err());
    }
}
