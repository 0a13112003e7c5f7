//! How the API shows the service's records: the JSON bodies of its answers
//! and their OpenAPI schemas. Kept apart from the records themselves
//! (`domain::records`) so the wire format is chosen here, in one place.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::businesses::CreatedBusiness as CreatedBusinessRecord;
use crate::app::reports::OverdueReport as OverdueReportRecord;
use crate::domain::records;

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
    /// `max(credit_limit - balance, 0)`.
    #[schema(schema_with = super::openapi::non_negative)]
    pub available_credit: i64,
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
            created_at: customer.created_at,
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
    #[schema(schema_with = super::openapi::non_negative)]
    pub stock: i64,
    pub created_at: DateTime<Utc>,
}

impl From<records::Product> for Product {
    fn from(product: records::Product) -> Self {
        Self {
            id: product.id,
            name: product.name,
            price: product.price,
            stock: product.stock,
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
    pub created_at: DateTime<Utc>,
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
            items: items(order.items),
            returns: order.returns.into_iter().map(Return::from).collect(),
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
    /// Position in the customer's chain, from 1.
    pub seq: i64,
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
            },
            amount: entry.amount,
            balance_after: entry.balance_after,
            order_id: entry.order_id,
            return_id: entry.return_id,
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
    pub created_at: DateTime<Utc>,
}

/// An API key as listed: never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    pub id: Uuid,
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
    pub oldest_unpaid_at: DateTime<Utc>,
    pub aging: Aging,
}

/// Who owes what, and for how long.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueReport {
    pub as_of: DateTime<Utc>,
    pub days: i32,
    /// Sorted by `oldest_unpaid_at`, oldest first.
    pub customers: Vec<OverdueCustomer>,
}

impl From<OverdueReportRecord> for OverdueReport {
    fn from(report: OverdueReportRecord) -> Self {
        Self {
            as_of: report.as_of,
            days: report.days,
            customers: report
                .customers
                .into_iter()
                .map(|customer| OverdueCustomer {
                    customer_id: customer.customer_id,
                    name: customer.name,
                    balance: customer.balance,
                    overdue_amount: customer.overdue_amount,
                    oldest_unpaid_at: customer.oldest_unpaid_at,
                    aging: Aging {
                        current: customer.aging.current,
                        days_1_30: customer.aging.days_1_30,
                        days_31_60: customer.aging.days_31_60,
                        days_61_90: customer.aging.days_61_90,
                        over_90: customer.aging.over_90,
                    },
                })
                .collect(),
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
