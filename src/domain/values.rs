//! Value types that parse, rather than validate: holding one proves it valid.
//!
//! Amounts, prices, limits, stock and quantities are bounded to
//! ±(2^53 − 1), the integers every JSON client (JavaScript's numbers
//! included) reads exactly. Their parsers take an `i128` so that a wire
//! value beyond i64 is still a number to refuse with a reason, not a parse
//! failure.

use super::FieldError;

/// The largest integer a JSON client reads exactly: 2^53 − 1.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

const BEYOND_SAFE: &str = "must be at most 9007199254740991 in magnitude (2^53 - 1)";

/// A display name: 1..=200 characters after trimming, no control characters
/// (PostgreSQL text cannot hold NUL, and the others only cause harm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(field, "must be at most 200 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text explaining a stock adjustment: at most 200 characters, no
/// control characters; may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > 200 {
            return Err(FieldError::new(field, "must be at most 200 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Reason {
    /// A reason that must be given (a write-off's): 1..=200 characters.
    pub fn parse_required(field: &str, raw: &str) -> Result<Self, FieldError> {
        let reason = Self::parse(field, raw)?;
        if reason.0.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        Ok(reason)
    }
}

/// Days from a purchase to its due date: 0..=365.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTerms(i32);

impl PaymentTerms {
    pub const DEFAULT: PaymentTerms = PaymentTerms(30);

    pub fn parse(field: &str, value: i128) -> Result<Self, FieldError> {
        match i32::try_from(value) {
            Ok(days @ 0..=365) => Ok(Self(days)),
            _ => Err(FieldError::new(
                field,
                "must be a number of days from 0 to 365",
            )),
        }
    }

    pub fn days(self) -> i32 {
        self.0
    }
}

/// Where a customer's account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Buys on credit.
    Active,
    /// May pay, return and be written off, but not buy.
    OnHold,
    /// Final: reached only from a zero balance; nothing moves again.
    Closed,
}

impl AccountStatus {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        match raw {
            "active" => Ok(Self::Active),
            "on_hold" => Ok(Self::OnHold),
            "closed" => Ok(Self::Closed),
            _ => Err(FieldError::new(
                field,
                "must be one of active, on_hold, closed",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::OnHold => "on_hold",
            Self::Closed => "closed",
        }
    }
}

/// An ISO 4217 alphabetic code: three upper-case letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        if raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "must be an ISO 4217 code of three upper-case letters, e.g. USD",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self("USD".to_owned())
    }
}

/// Money or a count that may be zero (prices, credit limits, stock), at
/// most 2^53 − 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonNegative(i64);

impl NonNegative {
    pub fn parse(field: &str, value: i128) -> Result<Self, FieldError> {
        if value < 0 {
            return Err(FieldError::new(field, "must not be negative"));
        }
        safe(field, value).map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Money or a count that must be above zero (payments, quantities), at
/// most 2^53 − 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positive(i64);

impl Positive {
    pub fn parse(field: &str, value: i128) -> Result<Self, FieldError> {
        if value <= 0 {
            return Err(FieldError::new(field, "must be greater than zero"));
        }
        safe(field, value).map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A change of stock: not zero, at most 2^53 − 1 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta(i64);

impl Delta {
    pub fn parse(field: &str, value: i128) -> Result<Self, FieldError> {
        if value == 0 {
            return Err(FieldError::new(field, "must not be zero"));
        }
        safe(field, value).map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// An Idempotency-Key: 1..=255 visible ASCII characters, chosen by the
/// client; scoped to its business.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(field: &str, raw: &[u8]) -> Result<Self, FieldError> {
        let visible = raw.iter().all(|byte| (0x21..=0x7e).contains(byte));
        match std::str::from_utf8(raw) {
            Ok(text) if visible && (1..=255).contains(&raw.len()) => Ok(Self(text.to_owned())),
            _ => Err(FieldError::new(
                field,
                "must be 1 to 255 visible ASCII characters",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn safe(field: &str, value: i128) -> Result<i64, FieldError> {
    if value.unsigned_abs() > MAX_SAFE_INTEGER.unsigned_abs().into() {
        return Err(FieldError::new(field, BEYOND_SAFE));
    }
    i64::try_from(value).map_err(|_| FieldError::new(field, BEYOND_SAFE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            Name::parse("name", "  Acme ").map(|n| n.0),
            Ok("Acme".into())
        );
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", &"é".repeat(200)).is_ok());
        assert!(Name::parse("name", &"é".repeat(201)).is_err());
        assert!(Name::parse("name", "nul\0byte").is_err());
    }

    #[test]
    fn currency_is_three_upper_case_letters() {
        assert!(Currency::parse("currency", "EUR").is_ok());
        assert!(Currency::parse("currency", "eur").is_err());
        assert!(Currency::parse("currency", "EURO").is_err());
    }

    #[test]
    fn amounts_respect_their_sign() {
        assert!(NonNegative::parse("price", 0).is_ok());
        assert!(NonNegative::parse("price", -1).is_err());
        assert!(Positive::parse("amount", 0).is_err());
        assert!(Delta::parse("delta", 0).is_err());
        assert_eq!(Delta::parse("delta", -3).map(Delta::get), Ok(-3));
    }

    #[test]
    fn terms_and_statuses_parse() {
        assert_eq!(PaymentTerms::parse("t", 0).map(PaymentTerms::days), Ok(0));
        assert_eq!(
            PaymentTerms::parse("t", 365).map(PaymentTerms::days),
            Ok(365)
        );
        assert!(PaymentTerms::parse("t", 366).is_err());
        assert!(PaymentTerms::parse("t", -1).is_err());
        assert_eq!(
            AccountStatus::parse("s", "on_hold"),
            Ok(AccountStatus::OnHold)
        );
        assert!(AccountStatus::parse("s", "frozen").is_err());
        assert!(Reason::parse_required("r", "  ").is_err());
        assert!(Reason::parse_required("r", "bankrupt").is_ok());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("k", b"order-1").is_ok());
        assert!(IdempotencyKey::parse("k", b"").is_err());
        assert!(IdempotencyKey::parse("k", b"with space").is_err());
        assert!(IdempotencyKey::parse("k", "caf\u{e9}".as_bytes()).is_err());
        assert!(IdempotencyKey::parse("k", &[b'a'; 255]).is_ok());
        assert!(IdempotencyKey::parse("k", &[b'a'; 256]).is_err());
    }

    #[test]
    fn amounts_stop_at_the_largest_safe_integer() {
        let max = i128::from(MAX_SAFE_INTEGER);
        assert!(Positive::parse("amount", max).is_ok());
        assert!(Positive::parse("amount", max + 1).is_err());
        assert!(NonNegative::parse("price", i128::from(i64::MAX)).is_err());
        assert!(NonNegative::parse("price", i128::MAX).is_err());
        assert!(Delta::parse("delta", -max).is_ok());
        assert!(Delta::parse("delta", -max - 1).is_err());
        assert!(Delta::parse("delta", i128::from(i64::MIN)).is_err());
    }
}
