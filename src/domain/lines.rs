//! The lines of a purchase or a return.

use uuid::Uuid;

use super::{FieldError, MAX_SAFE_INTEGER, Positive};

/// A request may carry at most this many lines.
pub const MAX_LINES: usize = 100;

/// One product and how many of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// 1..=100 lines with positive quantities, merged so that each product
/// appears once (in the order of its first appearance) with the sum of its
/// quantities: two lines of one product must not each pass a stock check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines(Vec<Line>);

impl Lines {
    /// `raw` quantities are wire values, possibly beyond i64.
    pub fn parse(field: &str, raw: &[(Uuid, i128)]) -> Result<Self, Vec<FieldError>> {
        if raw.is_empty() {
            return Err(vec![FieldError::new(field, "must have at least one line")]);
        }
        if raw.len() > MAX_LINES {
            return Err(vec![FieldError::new(field, "must have at most 100 lines")]);
        }
        let mut errors = Vec::new();
        let mut merged: Vec<Line> = Vec::with_capacity(raw.len());
        for (index, &(product_id, quantity)) in raw.iter().enumerate() {
            let at = format!("{field}[{index}].quantity");
            let quantity = match Positive::parse(&at, quantity) {
                Ok(quantity) => quantity.get(),
                Err(error) => {
                    errors.push(error);
                    continue;
                }
            };
            match merged.iter_mut().find(|line| line.product_id == product_id) {
                Some(line) => match line.quantity.checked_add(quantity) {
                    Some(sum) if sum <= MAX_SAFE_INTEGER => line.quantity = sum,
                    _ => errors.push(FieldError::new(
                        at,
                        "the quantities of this product add up to more than 9007199254740991",
                    )),
                },
                None => merged.push(Line {
                    product_id,
                    quantity,
                }),
            }
        }
        if errors.is_empty() {
            Ok(Self(merged))
        } else {
            Err(errors)
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Line> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn product_ids(&self) -> Vec<Uuid> {
        self.0.iter().map(|line| line.product_id).collect()
    }

    pub fn quantities(&self) -> Vec<i64> {
        self.0.iter().map(|line| line.quantity).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_products_merge_in_first_appearance_order() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let lines = Lines::parse("items", &[(b, 1), (a, 2), (b, 3)]).expect("valid lines");
        assert_eq!(lines.product_ids(), vec![b, a]);
        assert_eq!(lines.quantities(), vec![4, 2]);
    }

    #[test]
    fn empty_too_many_and_non_positive_lines_are_refused() {
        assert!(Lines::parse("items", &[]).is_err());
        let many: Vec<_> = (0..101).map(|i| (Uuid::from_u128(i), 1)).collect();
        assert!(Lines::parse("items", &many).is_err());
        let errors = Lines::parse("items", &[(Uuid::nil(), 0), (Uuid::nil(), -1)])
            .expect_err("non-positive quantities");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "items[0].quantity");
    }

    #[test]
    fn merged_quantities_stay_within_the_safe_range() {
        let a = Uuid::from_u128(1);
        let max = i128::from(MAX_SAFE_INTEGER);
        assert!(Lines::parse("items", &[(a, max)]).is_ok());
        assert!(Lines::parse("items", &[(a, max), (a, 1)]).is_err());
        assert!(Lines::parse("items", &[(a, max + 1)]).is_err());
    }
}
