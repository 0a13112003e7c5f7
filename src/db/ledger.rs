//! A customer's credit ledger, read oldest first.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::Page;
use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column};
use crate::domain::records::{EntryKind, LedgerEntry};

fn kind(text: &str) -> Result<EntryKind, DbError> {
    match text {
        "purchase" => Ok(EntryKind::Purchase),
        "payment" => Ok(EntryKind::Payment),
        "return" => Ok(EntryKind::Return),
        "write_off" => Ok(EntryKind::WriteOff),
        other => Err(DbError::Decode(format!("ledger entry kind `{other}`"))),
    }
}

/// The columns `entry` reads.
pub(super) const ENTRY: &[Column] = &[
    Column::named::<Uuid>("id"),
    Column::named::<Uuid>("customer_id"),
    Column::named::<&str>("kind"),
    Column::named::<i64>("amount"),
    Column::named::<i64>("balance_after"),
    Column::named::<Option<Uuid>>("order_id"),
    Column::named::<Option<Uuid>>("return_id"),
    Column::named::<Option<DateTime<Utc>>>("due_at"),
    Column::named::<Option<String>>("reason"),
    Column::named::<i64>("seq"),
    Column::named::<DateTime<Utc>>("created_at"),
];

/// A ledger entry from a row of the columns in `ENTRY_COLUMNS`.
pub(super) fn entry(row: &Row) -> Result<LedgerEntry, DbError> {
    Ok(LedgerEntry {
        id: column(row, "id")?,
        customer_id: column(row, "customer_id")?,
        kind: kind(column(row, "kind")?)?,
        amount: column(row, "amount")?,
        balance_after: column(row, "balance_after")?,
        order_id: column(row, "order_id")?,
        return_id: column(row, "return_id")?,
        due_at: column(row, "due_at")?,
        reason: column(row, "reason")?,
        seq: column(row, "seq")?,
        created_at: column(row, "created_at")?,
    })
}

const LIST: &str =
    "SELECT id, customer_id, kind, amount, balance_after, order_id, return_id, due_at, reason, seq, created_at
                      FROM credit_ledger
                     WHERE business_id = $1 AND customer_id = $2 AND seq > $3
                     ORDER BY seq
                     LIMIT $4";

/// Entries after sequence number `page.after`. The caller checks that the
/// customer exists (an unknown customer has no entries either).
pub async fn list(
    tx: &TenantTx,
    customer_id: Uuid,
    page: &Page<i64>,
) -> Result<Vec<LedgerEntry>, DbError> {
    let business = tx.business_id();
    let after = page.after.unwrap_or(0);
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            LIST,
            &[
                (&business, Type::UUID),
                (&customer_id, Type::UUID),
                (&after, Type::INT8),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(entry).collect()
}

pub(super) const STATEMENTS: &[Statement] = &[statement!(
    LIST,
    &[Type::UUID, Type::UUID, Type::INT8, Type::INT8],
    ENTRY
)];
