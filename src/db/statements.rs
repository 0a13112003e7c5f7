//! A customer's statement: the balance brought forward, the period's
//! entries, their totals by kind, the balance carried forward and its aging.
//!
//! A ledger chain is in time order (0002: no entry is dated before the one
//! it follows), so a period of time is a range of the chain: `(first_after,
//! last_seq]`. Its ends are one probe each of `credit_ledger_by_time` (the
//! last entry before `from`, the last before `to`), so the opening balance
//! is that entry's balance_after, never a sum over history; consecutive
//! statements chain, the closing balance of one being the opening of the
//! next. The summary is one statement (one snapshot): its totals, balances
//! and aging agree with each other, and pages of entries are read within
//! the same range afterwards, so they agree too.

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::ledger::{ENTRY, entry};
use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column};
use crate::domain::records::{Aging, LedgerEntry, StatementTotals};

/// Where a period lies in a customer's chain, and what it sums to.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Entries of the period have `first_after < seq <= last_seq`.
    pub first_after: i64,
    pub last_seq: i64,
    pub opening_balance: i64,
    pub closing_balance: i64,
    pub totals: StatementTotals,
    pub aging: Aging,
}

// The aging at `to` is the overdue report's, as of the period's last entry:
// what was credited by then ($purchases_to_date - balance_after) settles
// the oldest purchases first, and each purchase still open lands in the
// bucket of its days past due at `to`. Those purchases are one range of
// credit_ledger_open_purchases: credited < purchases_to_date <= the
// lifetime purchases at the last entry.
const SUMMARY: &str = "
WITH opening AS (
    SELECT l.seq, l.balance_after FROM credit_ledger l
     WHERE l.business_id = $1 AND l.customer_id = $2 AND l.created_at < $3
     ORDER BY l.created_at DESC, l.seq DESC
     LIMIT 1
), closing AS (
    SELECT l.seq, l.balance_after, l.purchases_to_date FROM credit_ledger l
     WHERE l.business_id = $1 AND l.customer_id = $2 AND l.created_at < $4
     ORDER BY l.created_at DESC, l.seq DESC
     LIMIT 1
), period AS (
    SELECT coalesce((SELECT seq FROM opening), 0) AS first_after,
           coalesce((SELECT seq FROM closing), 0) AS last_seq,
           coalesce((SELECT balance_after FROM opening), 0) AS opening_balance,
           coalesce((SELECT balance_after FROM closing), 0) AS closing_balance,
           coalesce((SELECT purchases_to_date - balance_after FROM closing), 0) AS credited,
           coalesce((SELECT purchases_to_date FROM closing), 0) AS purchased
), totals AS (
    SELECT coalesce(sum(l.amount) FILTER (WHERE l.kind = 'purchase'), 0)::bigint AS purchases,
           coalesce(sum(l.amount) FILTER (WHERE l.kind = 'payment'), 0)::bigint AS payments,
           coalesce(sum(l.amount) FILTER (WHERE l.kind = 'return'), 0)::bigint AS returns,
           coalesce(sum(l.amount) FILTER (WHERE l.kind = 'write_off'), 0)::bigint AS write_offs
      FROM period p
      JOIN credit_ledger l
        ON l.business_id = $1 AND l.customer_id = $2 AND l.seq > p.first_after AND l.seq <= p.last_seq
), aging AS (
    SELECT coalesce(sum(o.unsettled) FILTER (WHERE o.bucket = 0), 0)::bigint AS current,
           coalesce(sum(o.unsettled) FILTER (WHERE o.bucket = 1), 0)::bigint AS d30,
           coalesce(sum(o.unsettled) FILTER (WHERE o.bucket = 2), 0)::bigint AS d60,
           coalesce(sum(o.unsettled) FILTER (WHERE o.bucket = 3), 0)::bigint AS d90,
           coalesce(sum(o.unsettled) FILTER (WHERE o.bucket = 4), 0)::bigint AS over_90
      FROM (SELECT least(l.amount, l.purchases_to_date - p.credited) AS unsettled,
                   CASE WHEN l.due_at >= $4 THEN 0
                        WHEN l.due_at >= $5 THEN 1
                        WHEN l.due_at >= $6 THEN 2
                        WHEN l.due_at >= $7 THEN 3
                        ELSE 4 END AS bucket
              FROM period p
              JOIN credit_ledger l
                ON l.business_id = $1 AND l.customer_id = $2 AND l.kind = 'purchase' AND l.amount > 0
               AND l.purchases_to_date > p.credited AND l.purchases_to_date <= p.purchased) o
)
SELECT p.first_after, p.last_seq, p.opening_balance, p.closing_balance,
       t.purchases, t.payments, t.returns, t.write_offs,
       a.current, a.d30, a.d60, a.d90, a.over_90
  FROM period p, totals t, aging a";

/// The columns `summary` reads.
const SUMMARY_COLUMNS: &[Column] = &[
    Column::named::<i64>("first_after"),
    Column::named::<i64>("last_seq"),
    Column::named::<i64>("opening_balance"),
    Column::named::<i64>("closing_balance"),
    Column::named::<i64>("purchases"),
    Column::named::<i64>("payments"),
    Column::named::<i64>("returns"),
    Column::named::<i64>("write_offs"),
    Column::named::<i64>("current"),
    Column::named::<i64>("d30"),
    Column::named::<i64>("d60"),
    Column::named::<i64>("d90"),
    Column::named::<i64>("over_90"),
];

fn summary(row: &Row) -> Result<Summary, DbError> {
    Ok(Summary {
        first_after: column(row, "first_after")?,
        last_seq: column(row, "last_seq")?,
        opening_balance: column(row, "opening_balance")?,
        closing_balance: column(row, "closing_balance")?,
        totals: StatementTotals {
            purchases: column(row, "purchases")?,
            payments: column(row, "payments")?,
            returns: column(row, "returns")?,
            write_offs: column(row, "write_offs")?,
        },
        aging: Aging {
            current: column(row, "current")?,
            days_1_30: column(row, "d30")?,
            days_31_60: column(row, "d60")?,
            days_61_90: column(row, "d90")?,
            over_90: column(row, "over_90")?,
        },
    })
}

/// The period `[from, to)` of the customer's chain, summed.
pub async fn summarize(
    tx: &TenantTx,
    customer_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Summary, DbError> {
    let business = tx.business_id();
    let bounds = [1, 2, 3].map(|months| to - TimeDelta::days(30 * months));
    let row = tx
        .query_one(
            SUMMARY,
            &[
                (&business, Type::UUID),
                (&customer_id, Type::UUID),
                (&from, Type::TIMESTAMPTZ),
                (&to, Type::TIMESTAMPTZ),
                (&bounds[0], Type::TIMESTAMPTZ),
                (&bounds[1], Type::TIMESTAMPTZ),
                (&bounds[2], Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    summary(&row)
}

const ENTRIES: &str =
    "SELECT id, customer_id, kind, amount, balance_after, order_id, return_id, due_at,
                              reason, seq, created_at
                         FROM credit_ledger
                        WHERE business_id = $1 AND customer_id = $2 AND seq > $3 AND seq <= $4
                        ORDER BY seq
                        LIMIT $5";

/// Up to `limit` entries of the chain after seq `after`, up to `last_seq`,
/// oldest first.
pub async fn entries(
    tx: &TenantTx,
    customer_id: Uuid,
    after: i64,
    last_seq: i64,
    limit: i64,
) -> Result<Vec<LedgerEntry>, DbError> {
    let business = tx.business_id();
    let rows = tx
        .query(
            ENTRIES,
            &[
                (&business, Type::UUID),
                (&customer_id, Type::UUID),
                (&after, Type::INT8),
                (&last_seq, Type::INT8),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(entry).collect()
}

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        SUMMARY,
        &[
            Type::UUID,
            Type::UUID,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
        ],
        SUMMARY_COLUMNS
    ),
    statement!(
        ENTRIES,
        &[Type::UUID, Type::UUID, Type::INT8, Type::INT8, Type::INT8],
        ENTRY
    ),
];
