//! Value types that parse, rather than validate: holding one proves it valid.

use super::FieldError;

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

/// Money or a count that may be zero (prices, credit limits, stock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonNegative(i64);

impl NonNegative {
    pub fn parse(field: &str, value: i64) -> Result<Self, FieldError> {
        if value >= 0 {
            Ok(Self(value))
        } else {
            Err(FieldError::new(field, "must not be negative"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Money or a count that must be above zero (payments, quantities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positive(i64);

impl Positive {
    pub fn parse(field: &str, value: i64) -> Result<Self, FieldError> {
        if value > 0 {
            Ok(Self(value))
        } else {
            Err(FieldError::new(field, "must be greater than zero"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
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
        assert!(Positive::parse("amount", i64::MAX).is_ok());
    }
}
