//! The overdue (aging) report: who owes what, and for how long.
//!
//! Settlement is FIFO: payments and returns pay off the oldest purchases
//! first. Every ledger entry carries `purchases_to_date`, the running sum of
//! its customer's purchases (migration 0005), so at the newest entry
//! `purchases_to_date - balance_after` is everything ever credited, and a
//! purchase is still (partly) open exactly when its own `purchases_to_date`
//! exceeds that. The open purchases of a customer are then one range of the
//! partial index `credit_ledger_open_purchases`: the report reads the head of
//! each chain plus the open purchases, never the settled history.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::{DbError, TenantTx};

/// Aging of a customer's balance, by days past due (a purchase falls due
/// `days` after it was made). The buckets sum to the balance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Aging {
    /// Not yet due: purchases at most `days` old.
    pub current: i64,
    #[serde(rename = "1_30")]
    #[schema(rename = "1_30")]
    pub days_1_30: i64,
    #[serde(rename = "31_60")]
    #[schema(rename = "31_60")]
    pub days_31_60: i64,
    #[serde(rename = "61_90")]
    #[schema(rename = "61_90")]
    pub days_61_90: i64,
    pub over_90: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OverdueCustomer {
    pub customer_id: Uuid,
    pub name: String,
    pub balance: i64,
    /// The unsettled part of the purchases older than `days`.
    pub overdue_amount: i64,
    /// When the oldest purchase not yet fully settled was made.
    pub oldest_unpaid_at: DateTime<Utc>,
    pub aging: Aging,
}

// A purchase falls due `days` after it was made; it is overdue once
// created_at < due ($2 = as_of - days) and lands in the bucket of its whole
// days past due, rounded up: bucket k (1..=3) holds purchases made in
// [due - 30k days, due - 30(k-1) days), bucket 4 anything older. The bounds
// are computed once by the caller so each open purchase costs a few
// timestamp comparisons. Sums are numeric, but a customer's open amounts sum
// to their balance, which is a bigint.
const OVERDUE_SQL: &str = "
WITH heads AS MATERIALIZED (
    SELECT c.id, c.name, h.balance_after AS balance,
           h.purchases_to_date - h.balance_after AS credited
      FROM customers c
     CROSS JOIN LATERAL (
           SELECT l.balance_after, l.purchases_to_date
             FROM credit_ledger l
            WHERE l.business_id = c.business_id AND l.customer_id = c.id
            ORDER BY l.seq DESC
            LIMIT 1) h
     WHERE c.business_id = $1 AND h.balance_after > 0
), open AS (
    SELECT h.id, p.created_at,
           least(p.amount, p.purchases_to_date - h.credited) AS unsettled,
           CASE WHEN p.created_at >= $2 THEN 0
                WHEN p.created_at >= $3 THEN 1
                WHEN p.created_at >= $4 THEN 2
                WHEN p.created_at >= $5 THEN 3
                ELSE 4 END AS bucket
      FROM heads h
      JOIN credit_ledger p
        ON p.business_id = $1 AND p.customer_id = h.id
       AND p.kind = 'purchase' AND p.amount > 0 AND p.purchases_to_date > h.credited
), aged AS (
    SELECT id, min(created_at) AS oldest_unpaid_at,
           coalesce(sum(unsettled) FILTER (WHERE bucket = 0), 0)::bigint AS current,
           coalesce(sum(unsettled) FILTER (WHERE bucket = 1), 0)::bigint AS d30,
           coalesce(sum(unsettled) FILTER (WHERE bucket = 2), 0)::bigint AS d60,
           coalesce(sum(unsettled) FILTER (WHERE bucket = 3), 0)::bigint AS d90,
           coalesce(sum(unsettled) FILTER (WHERE bucket = 4), 0)::bigint AS over_90
      FROM open
     GROUP BY id
    HAVING max(bucket) > 0
)
SELECT a.*, h.name, h.balance, a.d30 + a.d60 + a.d90 + a.over_90 AS overdue
  FROM aged a
  JOIN heads h USING (id)
 ORDER BY a.oldest_unpaid_at, a.id";

/// Customers with a purchase older than `days` that is not fully settled,
/// oldest debt first, as of `as_of`.
pub async fn overdue(
    tx: &TenantTx,
    as_of: DateTime<Utc>,
    days: i32,
) -> Result<Vec<OverdueCustomer>, DbError> {
    let business = tx.business_id();
    let due = as_of - TimeDelta::days(i64::from(days));
    let bounds = [1, 2, 3].map(|months| due - TimeDelta::days(30 * months));
    let rows = tx
        .query(
            OVERDUE_SQL,
            &[
                (&business, Type::UUID),
                (&due, Type::TIMESTAMPTZ),
                (&bounds[0], Type::TIMESTAMPTZ),
                (&bounds[1], Type::TIMESTAMPTZ),
                (&bounds[2], Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| OverdueCustomer {
            customer_id: row.get("id"),
            name: row.get("name"),
            balance: row.get("balance"),
            overdue_amount: row.get("overdue"),
            oldest_unpaid_at: row.get("oldest_unpaid_at"),
            aging: Aging {
                current: row.get("current"),
                days_1_30: row.get("d30"),
                days_31_60: row.get("d60"),
                days_61_90: row.get("d90"),
                over_90: row.get("over_90"),
            },
        })
        .collect())
}
