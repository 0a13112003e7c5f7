//! The records the service keeps, as the use cases hand them to an edge.
//! How an edge shows them (JSON fields, schemas) is the edge's business.
//! Records written by the database's use-case functions are decoded from
//! the JSON those functions answer, hence `Deserialize`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::AccountStatus;

/// A tenant.
#[derive(Debug, Clone)]
pub struct Business {
    pub id: Uuid,
    pub name: String,
    pub currency: String,
    /// The terms a new customer gets unless it is given its own.
    pub payment_terms_days: i32,
    pub created_at: DateTime<Utc>,
}

/// An API key as listed: never the secret.
#[derive(Debug, Clone)]
pub struct ApiKeyInfo {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A customer and where their account stands.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: Uuid,
    pub name: String,
    pub credit_limit: i64,
    /// What the ledger says is owed (negative: in credit).
    pub balance: i64,
    /// What its pending (unexpired) holds reserve of its credit.
    pub held: i64,
    pub status: AccountStatus,
    pub payment_terms_days: i32,
    pub created_at: DateTime<Utc>,
}

impl Customer {
    /// `max(credit_limit - balance - held, 0)`, never beyond i64 whatever
    /// the balance.
    pub fn available_credit(&self) -> i64 {
        let available =
            (i128::from(self.credit_limit) - i128::from(self.balance) - i128::from(self.held))
                .clamp(0, i64::MAX.into());
        i64::try_from(available).unwrap_or(i64::MAX)
    }
}

/// A product: its current price and stock.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    pub price: i64,
    pub stock: i64,
    /// Units its pending (unexpired) holds reserve: not for sale.
    pub reserved: i64,
    #[serde(deserialize_with = "super::time::deserialize")]
    pub created_at: DateTime<Utc>,
}

impl Product {
    /// What purchases and new holds may take: `stock - reserved`.
    pub fn available(&self) -> i64 {
        self.stock.saturating_sub(self.reserved)
    }
}

/// One recorded change of stock outside purchases and returns.
#[derive(Debug, Clone, Deserialize)]
pub struct StockAdjustment {
    pub id: Uuid,
    pub product_id: Uuid,
    pub delta: i64,
    pub reason: String,
    pub stock_after: i64,
    #[serde(deserialize_with = "super::time::deserialize")]
    pub created_at: DateTime<Utc>,
}

/// A product after an adjustment, and the adjustment.
#[derive(Debug, Clone, Deserialize)]
pub struct Adjusted {
    pub product: Product,
    pub adjustment: StockAdjustment,
}

/// One line of an order or a return, at the order's unit price.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub product_id: Uuid,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
}

/// Goods taken back from an order, credited at the order's prices.
#[derive(Debug, Clone, Deserialize)]
pub struct Return {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: i64,
    pub items: Vec<Item>,
    #[serde(deserialize_with = "super::time::deserialize")]
    pub created_at: DateTime<Utc>,
}

/// A completed purchase, never changed after it is written.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub total: i64,
    #[serde(deserialize_with = "super::time::deserialize")]
    pub created_at: DateTime<Utc>,
    /// `created_at` + the customer's payment terms at purchase time.
    #[serde(deserialize_with = "super::time::deserialize")]
    pub due_at: DateTime<Utc>,
    /// The hold this order captured, if any.
    #[serde(default)]
    pub hold_id: Option<Uuid>,
    pub items: Vec<Item>,
    /// Returns against the order, oldest first (none when just created).
    #[serde(default)]
    pub returns: Vec<Return>,
}

/// Where a hold stands. A pending hold past its `expires_at` is expired,
/// whether or not its expiry has been recorded yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Pending,
    Captured,
    Voided,
    Expired,
}

impl HoldStatus {
    pub fn parse(field: &str, raw: &str) -> Result<Self, super::FieldError> {
        match raw {
            "pending" => Ok(Self::Pending),
            "captured" => Ok(Self::Captured),
            "voided" => Ok(Self::Voided),
            "expired" => Ok(Self::Expired),
            _ => Err(super::FieldError::new(
                field,
                "must be one of pending, captured, voided, expired",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }
}

/// Stock and credit reserved at the prices of its creation, until it is
/// captured (an order), voided, or expires. Its lines never change.
#[derive(Debug, Clone, Deserialize)]
pub struct Hold {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub status: HoldStatus,
    pub items: Vec<Item>,
    pub total: i64,
    #[serde(deserialize_with = "super::time::deserialize")]
    pub created_at: DateTime<Utc>,
    #[serde(deserialize_with = "super::time::deserialize")]
    pub expires_at: DateTime<Utc>,
    /// When it was captured or voided, or its `expires_at` once expired.
    pub ended_at: Option<DateTime<Utc>>,
    /// The order that captured it.
    pub order_id: Option<Uuid>,
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Purchase,
    Payment,
    Return,
    WriteOff,
}

/// One append-only ledger entry: positive for purchases, negative for
/// payments and returns, with the running balance after it.
#[derive(Debug, Clone, Deserialize)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub kind: EntryKind,
    pub amount: i64,
    pub balance_after: i64,
    pub order_id: Option<Uuid>,
    #[serde(default)]
    pub return_id: Option<Uuid>,
    /// A purchase's due date.
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    /// A write-off's reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Position in the customer's chain, from 1.
    pub seq: i64,
    #[serde(deserialize_with = "super::time::deserialize")]
    pub created_at: DateTime<Utc>,
}

/// One change of a customer's limit, status or terms (or its creation),
/// with the values before (none at creation) and after.
#[derive(Debug, Clone)]
pub struct CustomerChange {
    /// Orders the changes of one customer.
    pub id: i64,
    pub changed_at: DateTime<Utc>,
    /// The API key that made it (its id), or `admin`, `cli`, `system`.
    pub changed_by: String,
    pub credit_limit: Change<i64>,
    pub status: Change<AccountStatus>,
    pub payment_terms_days: Change<i32>,
}

/// A value before and after a change; `None` before means it was set when
/// the customer was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<T> {
    pub old: Option<T>,
    pub new: T,
}

impl<T: PartialEq> Change<T> {
    /// Whether the value changed (or was first set).
    pub fn changed(&self) -> bool {
        self.old.as_ref() != Some(&self.new)
    }
}

/// A customer's account over a period.
#[derive(Debug, Clone)]
pub struct Statement {
    pub customer_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The balance after the last entry before `from`.
    pub opening_balance: i64,
    /// The balance after the last entry before `to`.
    pub closing_balance: i64,
    pub totals: StatementTotals,
    /// The balance at `to` by days past due.
    pub aging: Aging,
    /// A page of the period's entries, oldest first.
    pub entries: Vec<LedgerEntry>,
}

/// The period's entries summed by kind (credits as positive amounts).
#[derive(Debug, Clone, Copy, Default)]
pub struct StatementTotals {
    pub purchases: i64,
    pub payments: i64,
    pub returns: i64,
    pub write_offs: i64,
}

/// A customer's balance split by how long it has been due.
#[derive(Debug, Clone, Default)]
pub struct Aging {
    pub current: i64,
    pub days_1_30: i64,
    pub days_31_60: i64,
    pub days_61_90: i64,
    pub over_90: i64,
}

/// A customer with a purchase overdue and not yet settled.
#[derive(Debug, Clone)]
pub struct OverdueCustomer {
    pub customer_id: Uuid,
    pub name: String,
    pub balance: i64,
    pub overdue_amount: i64,
    pub oldest_unpaid_at: DateTime<Utc>,
    pub aging: Aging,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_credit_is_never_negative_nor_overflows() {
        let customer = |credit_limit, balance| Customer {
            id: Uuid::nil(),
            name: "c".into(),
            credit_limit,
            balance,
            held: 0,
            status: AccountStatus::Active,
            payment_terms_days: 30,
            created_at: DateTime::UNIX_EPOCH,
        };
        assert_eq!(customer(100, 30).available_credit(), 70);
        assert_eq!(customer(100, 130).available_credit(), 0);
        assert_eq!(customer(i64::MAX, -10).available_credit(), i64::MAX);
    }
}
