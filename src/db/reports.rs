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

use chrono::{DateTime, Utc};
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

// Past due = as_of - (created_at + days); a purchase is overdue when that is
// positive, and lands in the bucket of its whole days past due, rounded up.
// Sums are numeric so a large book cannot overflow before the cast back.
const OVERDUE_SQL: &str = "
WITH heads AS (
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
    SELECT h.id, h.name, h.balance, p.created_at,
           least(p.amount, p.purchases_to_date - h.credited) AS unsettled,
           $2::timestamptz - (p.created_at + make_interval(days => $3)) AS past_due
      FROM heads h
      JOIN credit_ledger p
        ON p.business_id = $1 AND p.customer_id = h.id
       AND p.kind = 'purchase' AND p.purchases_to_date > h.credited
)
SELECT id, name, balance, min(created_at) AS oldest_unpaid_at,
       coalesce(sum(unsettled) FILTER (WHERE past_due > interval '0'), 0)::bigint AS overdue,
       coalesce(sum(unsettled) FILTER (WHERE past_due <= interval '0'), 0)::bigint AS current,
       coalesce(sum(unsettled) FILTER (WHERE past_due > interval '0' AND past_due <= interval '30 days'), 0)::bigint AS d30,
       coalesce(sum(unsettled) FILTER (WHERE past_due > interval '30 days' AND past_due <= interval '60 days'), 0)::bigint AS d60,
       coalesce(sum(unsettled) FILTER (WHERE past_due > interval '60 days' AND past_due <= interval '90 days'), 0)::bigint AS d90,
       coalesce(sum(unsettled) FILTER (WHERE past_due > interval '90 days'), 0)::bigint AS over_90
  FROM open
 GROUP BY id, name, balance
HAVING bool_or(past_due > interval '0')
 ORDER BY oldest_unpaid_at, id";

/// Customers with a purchase older than `days` that is not fully settled,
/// oldest debt first, as of `as_of`.
pub async fn overdue(
    tx: &TenantTx,
    as_of: DateTime<Utc>,
    days: i32,
) -> Result<Vec<OverdueCustomer>, DbError> {
    let business = tx.business_id();
    let rows = tx
        .query(
            OVERDUE_SQL,
            &[
                (&business, Type::UUID),
                (&as_of, Type::TIMESTAMPTZ),
                (&days, Type::INT4),
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
