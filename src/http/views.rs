//! How the API shows the service's records: the JSON bodies of its answers
//! and their OpenAPI schemas. Kept apart from the records themselves
//! (`domain::records`) so the wire format is chosen here, in one place.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::businesses::CreatedBusiness as CreatedBusinessRecord;
use crate::domain::{self, records};

/// A customer and where their account stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub id: Uuid,
    pub name: String,
    /// In minor units.
    #[schema(schema_with = super::openapi::non_negative)]
    pub credit_limit: i64,
    /// Sum of the ledger: what the customer owes now (negative: in credit).
    #[schema(schema_with = super::openapi::signed_amount)]
    pub balance: i64,
    /// Credit reserved by the customer's pending holds: it counts against
    /// the limit like the balance, until each hold is captured, voided or
    /// expires.
    #[schema(schema_with = super::openapi::non_negative)]
    pub held: i64,
    /// `max(credit_limit - balance - held, 0)`: what a purchase or a hold
    /// may still take.
    #[schema(schema_with = super::openapi::non_negative)]
    pub available_credit: i64,
    pub status: AccountStatus,
    /// Days from a purchase to its due date (0..=365).
    #[schema(minimum = 0, maximum = 365)]
    pub payment_terms_days: i32,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<records::Customer> for Customer {
    fn from(customer: records::Customer) -> Self {
        Self {
            available_credit: customer.available_credit(),
            id: customer.id,
            name: customer.name,
            credit_limit: customer.credit_limit,
            balance: customer.balance,
            held: customer.held,
            status: customer.status.into(),
            payment_terms_days: customer.payment_terms_days,
            created_at: customer.created_at,
        }
    }
}

/// Where a customer's account stands: `active` buys on credit; `on_hold`
/// may pay, return and be written off, but not buy; `closed` (only from a
/// zero balance) is final, and nothing moves for it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    OnHold,
    Closed,
}

impl From<domain::AccountStatus> for AccountStatus {
    fn from(status: domain::AccountStatus) -> Self {
        match status {
            domain::AccountStatus::Active => AccountStatus::Active,
            domain::AccountStatus::OnHold => AccountStatus::OnHold,
            domain::AccountStatus::Closed => AccountStatus::Closed,
        }
    }
}

/// A product: its current price and stock.
#[derive(Debug, Serialize, ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    /// Current price in minor units; past orders keep the price they paid.
    #[schema(schema_with = super::openapi::non_negative)]
    pub price: i64,
    /// Units on hand, including those reserved by pending holds.
    #[schema(schema_with = super::openapi::non_negative)]
    pub stock: i64,
    /// Units reserved by pending holds: kept for their capture.
    #[schema(schema_with = super::openapi::non_negative)]
    pub reserved: i64,
    /// `stock - reserved`: what purchases and new holds may take.
    #[schema(schema_with = super::openapi::non_negative)]
    pub available: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<records::Product> for Product {
    fn from(product: records::Product) -> Self {
        Self {
            available: product.available(),
            id: product.id,
            name: product.name,
            price: product.price,
            stock: product.stock,
            reserved: product.reserved,
            created_at: product.created_at,
        }
    }
}

/// One recorded change of stock outside purchases and returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockAdjustment {
    pub id: Uuid,
    pub product_id: Uuid,
    #[schema(schema_with = super::openapi::signed_amount)]
    pub delta: i64,
    pub reason: String,
    #[schema(schema_with = super::openapi::non_negative)]
    pub stock_after: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// The product after an adjustment, and the adjustment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Adjusted {
    pub product: Product,
    pub adjustment: StockAdjustment,
}

impl From<records::Adjusted> for Adjusted {
    fn from(adjusted: records::Adjusted) -> Self {
        let adjustment = adjusted.adjustment;
        Self {
            product: adjusted.product.into(),
            adjustment: StockAdjustment {
                id: adjustment.id,
                product_id: adjustment.product_id,
                delta: adjustment.delta,
                reason: adjustment.reason,
                stock_after: adjustment.stock_after,
                created_at: adjustment.created_at,
            },
        }
    }
}

/// One line of an order or a return, at the order's unit price.
#[derive(Debug, Serialize, ToSchema)]
pub struct Item {
    pub product_id: Uuid,
    #[schema(schema_with = super::openapi::positive)]
    pub quantity: i64,
    /// The price at purchase time.
    #[schema(schema_with = super::openapi::non_negative)]
    pub unit_price: i64,
    /// `quantity × unit_price`.
    #[schema(schema_with = super::openapi::non_negative)]
    pub line_total: i64,
}

impl From<records::Item> for Item {
    fn from(item: records::Item) -> Self {
        Self {
            product_id: item.product_id,
            quantity: item.quantity,
            unit_price: item.unit_price,
            line_total: item.line_total,
        }
    }
}

fn items(items: Vec<records::Item>) -> Vec<Item> {
    items.into_iter().map(Item::from).collect()
}

/// Goods taken back from an order, credited to the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Return {
    pub id: Uuid,
    pub order_id: Uuid,
    /// Credited amount: sum of quantity × the order's unit price.
    #[schema(schema_with = super::openapi::non_negative)]
    pub amount: i64,
    pub items: Vec<Item>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<records::Return> for Return {
    fn from(goods: records::Return) -> Self {
        Self {
            id: goods.id,
            order_id: goods.order_id,
            amount: goods.amount,
            items: items(goods.items),
            created_at: goods.created_at,
        }
    }
}

/// A completed purchase, never changed after it is written.
#[derive(Debug, Serialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub customer_id: Uuid,
    /// Sum of the line totals.
    #[schema(schema_with = super::openapi::non_negative)]
    pub total: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// `created_at` + the customer's payment terms when it was bought;
    /// never moved by a later change of terms.
    #[serde(serialize_with = "rfc3339")]
    pub due_at: DateTime<Utc>,
    /// The hold this order captured (at the hold's prices), or null.
    #[schema(required = true)]
    pub hold_id: Option<Uuid>,
    pub items: Vec<Item>,
    /// Returns made against this order, oldest first.
    pub returns: Vec<Return>,
}

impl From<records::Order> for Order {
    fn from(order: records::Order) -> Self {
        Self {
            id: order.id,
            customer_id: order.customer_id,
            total: order.total,
            created_at: order.created_at,
            due_at: order.due_at,
            hold_id: order.hold_id,
            items: items(order.items),
            returns: order.returns.into_iter().map(Return::from).collect(),
        }
    }
}

/// Where a hold stands: `pending` reserves its stock and credit until its
/// `expires_at`; `captured` became an order; `voided` and `expired`
/// released everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Pending,
    Captured,
    Voided,
    Expired,
}

impl From<records::HoldStatus> for HoldStatus {
    fn from(status: records::HoldStatus) -> Self {
        match status {
            records::HoldStatus::Pending => HoldStatus::Pending,
            records::HoldStatus::Captured => HoldStatus::Captured,
            records::HoldStatus::Voided => HoldStatus::Voided,
            records::HoldStatus::Expired => HoldStatus::Expired,
        }
    }
}

/// Stock and credit reserved at the prices of its creation: captured later
/// as an order, voided, or expired at `expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Hold {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub status: HoldStatus,
    /// The lines held, at the prices when the hold was made (a capture pays
    /// these, whatever the prices are then).
    pub items: Vec<Item>,
    /// Sum of the line totals: the credit held.
    #[schema(schema_with = super::openapi::non_negative)]
    pub total: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// From then on it reserves nothing and can no longer be captured.
    #[serde(serialize_with = "rfc3339")]
    pub expires_at: DateTime<Utc>,
    /// When it was captured or voided, or its `expires_at` once expired;
    /// null while pending.
    #[schema(required = true)]
    pub ended_at: Option<DateTime<Utc>>,
    /// The order that captured it, or null.
    #[schema(required = true)]
    pub order_id: Option<Uuid>,
}

impl From<records::Hold> for Hold {
    fn from(hold: records::Hold) -> Self {
        Self {
            id: hold.id,
            customer_id: hold.customer_id,
            status: hold.status.into(),
            items: items(hold.items),
            total: hold.total,
            created_at: hold.created_at,
            expires_at: hold.expires_at,
            ended_at: hold.ended_at,
            order_id: hold.order_id,
        }
    }
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Purchase,
    Payment,
    Return,
    WriteOff,
}

/// One append-only ledger entry: positive for purchases, negative for
/// payments and returns, with the running balance after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub kind: EntryKind,
    #[schema(schema_with = super::openapi::signed_amount)]
    pub amount: i64,
    #[schema(schema_with = super::openapi::signed_amount)]
    pub balance_after: i64,
    /// The order of a purchase or a return.
    #[schema(required = true)]
    pub order_id: Option<Uuid>,
    /// The return of a return entry.
    #[schema(required = true)]
    pub return_id: Option<Uuid>,
    /// When a purchase falls due; null for other kinds.
    #[schema(required = true)]
    pub due_at: Option<DateTime<Utc>>,
    /// Why a write-off was granted; null for other kinds.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// Position in the customer's chain, from 1.
    pub seq: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<records::LedgerEntry> for LedgerEntry {
    fn from(entry: records::LedgerEntry) -> Self {
        Self {
            id: entry.id,
            customer_id: entry.customer_id,
            kind: match entry.kind {
                records::EntryKind::Purchase => EntryKind::Purchase,
                records::EntryKind::Payment => EntryKind::Payment,
                records::EntryKind::Return => EntryKind::Return,
                records::EntryKind::WriteOff => EntryKind::WriteOff,
            },
            amount: entry.amount,
            balance_after: entry.balance_after,
            order_id: entry.order_id,
            return_id: entry.return_id,
            due_at: entry.due_at,
            reason: entry.reason,
            seq: entry.seq,
            created_at: entry.created_at,
        }
    }
}

/// A new API key: the only time its plain text is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKey {
    pub id: Uuid,
    pub key: String,
}

/// A new business and its first API key.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedBusiness {
    pub id: Uuid,
    pub name: String,
    pub currency: String,
    /// The payment terms, in days, its new customers get.
    #[schema(minimum = 0, maximum = 365)]
    pub payment_terms_days: i32,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// `key` is shown only here; the server stores only its hash.
    pub api_key: IssuedKey,
}

impl From<CreatedBusinessRecord> for CreatedBusiness {
    fn from(created: CreatedBusinessRecord) -> Self {
        Self {
            id: created.business.id,
            name: created.business.name,
            currency: created.business.currency,
            payment_terms_days: created.business.payment_terms_days,
            created_at: created.business.created_at,
            api_key: IssuedKey {
                id: created.api_key_id,
                key: created.api_key,
            },
        }
    }
}

/// Another API key for the business.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: Uuid,
    /// The plain key, shown only in this response.
    pub key: String,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// An API key as listed: never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    pub id: Uuid,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it stopped working; null while it works.
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<records::ApiKeyInfo> for ApiKeyInfo {
    fn from(info: records::ApiKeyInfo) -> Self {
        Self {
            id: info.id,
            created_at: info.created_at,
            revoked_at: info.revoked_at,
        }
    }
}

/// A customer's balance by days past due; the buckets sum to the balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Aging {
    /// Not yet due.
    #[schema(schema_with = super::openapi::non_negative)]
    pub current: i64,
    #[serde(rename = "1_30")]
    #[schema(rename = "1_30")]
    #[schema(schema_with = super::openapi::non_negative)]
    pub days_1_30: i64,
    #[serde(rename = "31_60")]
    #[schema(rename = "31_60")]
    #[schema(schema_with = super::openapi::non_negative)]
    pub days_31_60: i64,
    #[serde(rename = "61_90")]
    #[schema(rename = "61_90")]
    #[schema(schema_with = super::openapi::non_negative)]
    pub days_61_90: i64,
    #[schema(schema_with = super::openapi::non_negative)]
    pub over_90: i64,
}

/// A customer with an overdue purchase not yet settled.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueCustomer {
    pub customer_id: Uuid,
    pub name: String,
    #[schema(schema_with = super::openapi::signed_amount)]
    pub balance: i64,
    /// The unsettled part of the overdue purchases.
    #[schema(schema_with = super::openapi::non_negative)]
    pub overdue_amount: i64,
    /// When the oldest purchase not yet fully settled was made.
    #[serde(serialize_with = "rfc3339")]
    pub oldest_unpaid_at: DateTime<Utc>,
    pub aging: Aging,
}

// The handler writes this JSON a customer at a time (reports/body.rs,
// tested against what serde writes for this type).
/// Who owes what, and for how long.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueReport {
    #[serde(serialize_with = "rfc3339")]
    pub as_of: DateTime<Utc>,
    /// The `days` asked for; null when each purchase is aged by its own
    /// due date.
    #[schema(required = true, minimum = 0, maximum = 36500)]
    pub days: Option<i32>,
    /// Sorted by `oldest_unpaid_at`, oldest first.
    pub customers: Vec<OverdueCustomer>,
}

impl From<records::OverdueCustomer> for OverdueCustomer {
    fn from(customer: records::OverdueCustomer) -> Self {
        Self {
            customer_id: customer.customer_id,
            name: customer.name,
            balance: customer.balance,
            overdue_amount: customer.overdue_amount,
            oldest_unpaid_at: customer.oldest_unpaid_at,
            aging: customer.aging.into(),
        }
    }
}

/// A page of a list: the rows, and where the next page starts.
macro_rules! list_view {
    ($name:ident, $item:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, ".")]
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            pub data: Vec<$item>,
            /// Pass as `?cursor=` for the next page; null on the last page.
            #[schema(required = true)]
            pub next_cursor: Option<String>,
        }
    };
}

list_view!(ApiKeyList, ApiKeyInfo, "API keys");
list_view!(CustomerList, Customer, "customers");
list_view!(ProductList, Product, "products");
list_view!(OrderList, Order, "orders");
list_view!(HoldList, Hold, "holds");
list_view!(LedgerEntryList, LedgerEntry, "ledger entries");

/// `ok` while the process runs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Up {
    Ok,
}

/// The process is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: Up,
}

/// Whether the database answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    Ready,
    Unavailable,
}

/// The database answers (`ready`) or not (`unavailable`, with 503).
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: Ready,
}

/// The caller's business.
#[derive(Debug, Serialize, ToSchema)]
pub struct Business {
    pub id: Uuid,
    pub name: String,
    pub currency: String,
    /// The payment terms, in days, new customers get unless given their
    /// own; changing it changes no existing customer's terms.
    #[schema(minimum = 0, maximum = 365)]
    pub payment_terms_days: i32,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<records::Business> for Business {
    fn from(business: records::Business) -> Self {
        Self {
            id: business.id,
            name: business.name,
            currency: business.currency,
            payment_terms_days: business.payment_terms_days,
            created_at: business.created_at,
        }
    }
}

/// A credit limit before and after a change (`old` null at creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitChange {
    #[schema(required = true, schema_with = super::openapi::optional_amount)]
    pub old: Option<i64>,
    #[schema(schema_with = super::openapi::non_negative)]
    pub new: i64,
}

/// A status before and after a change (`old` null at creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChange {
    #[schema(required = true)]
    pub old: Option<AccountStatus>,
    pub new: AccountStatus,
}

/// Payment terms before and after a change (`old` null at creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct TermsChange {
    #[schema(required = true, minimum = 0, maximum = 365)]
    pub old: Option<i32>,
    #[schema(minimum = 0, maximum = 365)]
    pub new: i32,
}

/// One change of a customer's limit, status or terms (or its creation):
/// who, when, and old → new of what changed (absent: unchanged).
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerChange {
    /// Orders the changes of one customer.
    pub id: i64,
    #[serde(serialize_with = "rfc3339")]
    pub changed_at: DateTime<Utc>,
    /// The id of the API key that made the change, or `admin`, `cli` or
    /// `system`.
    pub changed_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_limit: Option<LimitChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_terms_days: Option<TermsChange>,
}

impl From<records::CustomerChange> for CustomerChange {
    fn from(change: records::CustomerChange) -> Self {
        let limit = change.credit_limit;
        let status = change.status;
        let terms = change.payment_terms_days;
        Self {
            id: change.id,
            changed_at: change.changed_at,
            changed_by: change.changed_by,
            credit_limit: limit.changed().then_some(LimitChange {
                old: limit.old,
                new: limit.new,
            }),
            status: status.changed().then(|| StatusChange {
                old: status.old.map(AccountStatus::from),
                new: status.new.into(),
            }),
            payment_terms_days: terms.changed().then_some(TermsChange {
                old: terms.old,
                new: terms.new,
            }),
        }
    }
}

list_view!(
    CustomerChangeList,
    CustomerChange,
    "a customer's changes, oldest first"
);

/// A period's entries summed by kind: amounts as in the ledger (credits
/// negative), so `opening_balance` + the four = `closing_balance`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementTotals {
    #[schema(schema_with = super::openapi::signed_amount)]
    pub purchases: i64,
    #[schema(schema_with = super::openapi::signed_amount)]
    pub payments: i64,
    #[schema(schema_with = super::openapi::signed_amount)]
    pub returns: i64,
    #[schema(schema_with = super::openapi::signed_amount)]
    pub write_offs: i64,
}

/// A customer's account over `[from, to)`: the balance brought forward, the
/// period's entries (a page of them), their totals, the balance carried
/// forward, and its aging at `to`. `opening_balance` + the sum of every
/// entry of the period = `closing_balance`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Statement {
    pub customer_id: Uuid,
    #[serde(serialize_with = "rfc3339")]
    pub from: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub to: DateTime<Utc>,
    #[schema(schema_with = super::openapi::signed_amount)]
    pub opening_balance: i64,
    #[schema(schema_with = super::openapi::signed_amount)]
    pub closing_balance: i64,
    pub totals: StatementTotals,
    pub aging: Aging,
    pub entries: Vec<LedgerEntry>,
    /// Pass as `?cursor=` for the next page of entries; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl Statement {
    pub fn new(statement: records::Statement, next_cursor: Option<String>) -> Self {
        let (totals, aging) = (statement.totals, statement.aging);
        Self {
            customer_id: statement.customer_id,
            from: statement.from,
            to: statement.to,
            opening_balance: statement.opening_balance,
            closing_balance: statement.closing_balance,
            totals: StatementTotals {
                purchases: totals.purchases,
                payments: totals.payments,
                returns: totals.returns,
                write_offs: totals.write_offs,
            },
            aging: aging.into(),
            entries: statement
                .entries
                .into_iter()
                .map(LedgerEntry::from)
                .collect(),
            next_cursor,
        }
    }
}

impl From<records::Aging> for Aging {
    fn from(aging: records::Aging) -> Self {
        Self {
            current: aging.current,
            days_1_30: aging.days_1_30,
            days_31_60: aging.days_31_60,
            days_61_90: aging.days_61_90,
            over_90: aging.over_90,
        }
    }
}

/// A time as chrono's own `Serialize` writes it (RFC 3339 in UTC with `Z`,
/// and 0, 3, 6 or 9 fractional digits: the fewest that show it exactly),
/// but digit by digit into a buffer on the stack. chrono's goes through
/// `fmt` one character at a time: an order's two times cost 5.8k of the
/// server's 123k instructions per purchase
/// (bench/results/20261205T0208Z-profile.md). Years outside 0..=9999 and
/// leap seconds, which chrono writes differently, are left to chrono.
fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let (year, nanos) = (at.year(), at.nanosecond());
    let (Ok(year @ 0..=9999), 0..=999_999_999) = (u32::try_from(year), nanos) else {
        return at.serialize(serializer);
    };
    let (digits, fraction) = match nanos {
        0 => (0, 0),
        _ if nanos % 1_000_000 == 0 => (3, nanos / 1_000_000),
        _ if nanos % 1_000 == 0 => (6, nanos / 1_000),
        _ => (9, nanos),
    };
    let mut text = [0_u8; 30];
    let mut len = 0;
    let mut put = |value: u32, width: u32, after: Option<u8>| {
        for place in (0..width).rev() {
            text[len] = b'0' + (value / 10_u32.pow(place) % 10) as u8;
            len += 1;
        }
        if let Some(separator) = after {
            text[len] = separator;
            len += 1;
        }
    };
    put(year, 4, Some(b'-'));
    put(at.month(), 2, Some(b'-'));
    put(at.day(), 2, Some(b'T'));
    put(at.hour(), 2, Some(b':'));
    put(at.minute(), 2, Some(b':'));
    put(at.second(), 2, (digits > 0).then_some(b'.'));
    put(fraction, digits, Some(b'Z'));
    let text = std::str::from_utf8(&text[..len]).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(text)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    use serde::Serialize;

    #[derive(Serialize)]
    struct Ours(#[serde(serialize_with = "super::rfc3339")] DateTime<Utc>);

    fn same_as_chrono(at: DateTime<Utc>) {
        let ours = serde_json::to_string(&Ours(at)).expect("serializes");
        let chrono = serde_json::to_string(&at).expect("serializes");
        assert_eq!(ours, chrono, "for {at:?}");
    }

    #[test]
    fn times_are_written_exactly_as_chrono_writes_them() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            // xorshift: the same spread of times on every run.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let seconds = (seed % 253_402_300_800) as i64 - 62_167_219_200; // years 0..=9999
            let nanos = match seed % 4 {
                0 => 0,
                1 => (seed >> 8) as u32 % 1_000 * 1_000_000,
                2 => (seed >> 8) as u32 % 1_000_000 * 1_000,
                _ => (seed >> 8) as u32 % 1_000_000_000,
            };
            same_as_chrono(
                Utc.timestamp_opt(seconds, nanos)
                    .single()
                    .expect("in range"),
            );
        }
        for (date, nanos) in [
            (day(0, 1, 1), 0),
            (day(1970, 1, 1), 1),
            (day(2026, 12, 5), 123_000_000),
            (day(2026, 12, 5), 123_456_000),
            (day(2026, 12, 5), 100_000),
            (day(9999, 12, 31), 999_999_999),
            // chrono's own forms: a sign and five digits, a leap second.
            (day(-1, 12, 31), 0),
            (day(10_000, 1, 1), 5_000),
        ] {
            let at = date
                .and_hms_nano_opt(23, 59, 59, nanos)
                .expect("valid time");
            same_as_chrono(at.and_utc());
        }
        let leap = day(2016, 12, 31)
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .expect("a leap second");
        same_as_chrono(leap.and_utc());
    }
}
