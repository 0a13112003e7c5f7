//! A customer's credit ledger, read oldest first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::Page;
use super::{DbError, TenantTx};

/// One append-only ledger entry: positive for purchases, negative for
/// payments and returns, with the running balance after it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub customer_id: Uuid,
    /// `purchase`, `payment` or `return`.
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub order_id: Option<Uuid>,
    #[serde(default)]
    pub return_id: Option<Uuid>,
    /// Position in the customer's chain, from 1.
    #[serde(default)]
    pub seq: i64,
    pub created_at: DateTime<Utc>,
}

impl LedgerEntry {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            customer_id: row.get("customer_id"),
            kind: row.get("kind"),
            amount: row.get("amount"),
            balance_after: row.get("balance_after"),
            order_id: row.get("order_id"),
            return_id: row.get("return_id"),
            seq: row.get("seq"),
            created_at: row.get("created_at"),
        }
    }
}

/// Entries after sequence number `page.after`, or `None` when the business
/// has no such customer.
pub async fn list(
    tx: &TenantTx,
    customer_id: Uuid,
    page: &Page<i64>,
) -> Result<Option<Vec<LedgerEntry>>, DbError> {
    let business = tx.business_id();
    let exists = tx
        .query_opt(
            "SELECT 1 FROM customers WHERE business_id = $1 AND id = $2",
            &[(&business, Type::UUID), (&customer_id, Type::UUID)],
        )
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let after = page.after.unwrap_or(0);
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            "SELECT id, customer_id, kind, amount, balance_after, order_id, return_id, seq, created_at
               FROM credit_ledger
              WHERE business_id = $1 AND customer_id = $2 AND seq > $3
              ORDER BY seq
              LIMIT $4",
            &[
                (&business, Type::UUID),
                (&customer_id, Type::UUID),
                (&after, Type::INT8),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    Ok(Some(rows.iter().map(LedgerEntry::from_row).collect()))
}
