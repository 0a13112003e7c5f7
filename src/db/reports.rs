//! The overdue (aging) report: who owes what, and for how long.
//!
//! Settlement is FIFO: payments and returns pay off the oldest purchases
//! first. Every ledger entry carries `purchases_to_date`, the running sum of
//! its customer's purchases, so at the newest entry
//! `purchases_to_date - balance_after` is everything ever credited, and a
//! purchase is still (partly) open exactly when its own `purchases_to_date`
//! exceeds that. The open purchases of a customer are then one range of the
//! partial index `credit_ledger_open_purchases`: the report reads the head of
//! each chain plus the open purchases, never the settled history.

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::TryStreamExt;
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column};
use crate::domain::records::{Aging, OverdueCustomer};

// A purchase falls due at its due_at (fixed by the customer's terms when it
// was made), or, when the report is asked with `days` ($6), `days` after it
// was made. It is overdue once that is before as_of ($2) and lands in the
// bucket of its whole days past due, rounded up: bucket k (1..=3) holds
// purchases due in [as_of - 30k days, as_of - 30(k-1) days), bucket 4
// anything older. The bounds are computed once by the caller, and due_at is
// in the index the open purchases are read from, so each costs a few
// timestamp comparisons. With `days`, `created_at + days >= bound` is
// `created_at >= bound - days`: the caller shifts the bounds instead, so no
// row pays for date arithmetic (a per-row make_interval made the report
// about twice as slow with `days` as without).
//
// Per customer, one LATERAL reads the head of the chain (an index-only
// probe of the chain's unique key, which carries balance_after and
// purchases_to_date since migration 0011) and one LATERAL aggregates the
// open purchases, a range of `credit_ledger_open_purchases` starting at
// what was credited. As LATERAL subqueries these stay nested loops whatever
// the plan (custom or generic): as a join, the planner merged the heads
// with the whole index, every purchase ever made, settled or not (500,000
// rows read for the 225,000 open ones on bench/report.sh's ledger).
// `credited` is a column of the head's subquery so that the range's bound
// is an index condition: an expression (`purchases_to_date -
// balance_after`) there is not leakproof, and row level security keeps it
// a filter.
//
// Each open purchase adds its unsettled part to `open` and to one sum per
// bound it falls due before; the buckets are the differences (`open -
// over_0` is current, `over_0 - over_30` is 1-30 days past due, and so
// on). A customer is listed when some open purchase fell due before as_of:
// every open purchase's unsettled part is positive, so exactly when
// `over_0 > 0`. Sums are numeric, but a customer's open amounts sum to
// their balance, a bigint.
const OVERDUE_SQL: &str = "
SELECT c.id, c.name, h.balance, a.oldest_unpaid_at,
       (a.open - a.over_0)::bigint AS current,
       (a.over_0 - a.over_30)::bigint AS d30,
       (a.over_30 - a.over_60)::bigint AS d60,
       (a.over_60 - a.over_90)::bigint AS d90,
       a.over_90::bigint AS over_90,
       a.over_0::bigint AS overdue
  FROM customers c
 CROSS JOIN LATERAL (
       SELECT l.balance_after AS balance,
              l.purchases_to_date - l.balance_after AS credited
         FROM credit_ledger l
        WHERE l.business_id = c.business_id AND l.customer_id = c.id
        ORDER BY l.seq DESC
        LIMIT 1) h
 CROSS JOIN LATERAL (
       SELECT min(o.created_at) AS oldest_unpaid_at,
              sum(o.unsettled) AS open,
              sum(o.unsettled) FILTER (WHERE o.due < $2) AS over_0,
              coalesce(sum(o.unsettled) FILTER (WHERE o.due < $3), 0) AS over_30,
              coalesce(sum(o.unsettled) FILTER (WHERE o.due < $4), 0) AS over_60,
              coalesce(sum(o.unsettled) FILTER (WHERE o.due < $5), 0) AS over_90
         FROM (SELECT p.created_at,
                      least(p.amount, p.purchases_to_date - h.credited) AS unsettled,
                      CASE WHEN $6::int IS NULL THEN p.due_at ELSE p.created_at END AS due
                 FROM credit_ledger p
                WHERE p.business_id = c.business_id AND p.customer_id = c.id
                  AND p.kind = 'purchase' AND p.amount > 0
                  AND p.purchases_to_date > h.credited) o) a
 WHERE c.business_id = $1 AND h.balance > 0 AND a.over_0 > 0
 ORDER BY a.oldest_unpaid_at, c.id";

/// The columns `overdue_customer` reads.
const OVERDUE_CUSTOMER: &[Column] = &[
    Column::named::<Uuid>("id"),
    Column::named::<String>("name"),
    Column::named::<i64>("balance"),
    Column::named::<i64>("overdue"),
    Column::named::<DateTime<Utc>>("oldest_unpaid_at"),
    Column::named::<i64>("current"),
    Column::named::<i64>("d30"),
    Column::named::<i64>("d60"),
    Column::named::<i64>("d90"),
    Column::named::<i64>("over_90"),
];

fn overdue_customer(row: &Row) -> Result<OverdueCustomer, DbError> {
    Ok(OverdueCustomer {
        customer_id: column(row, "id")?,
        name: column(row, "name")?,
        balance: column(row, "balance")?,
        overdue_amount: column(row, "overdue")?,
        oldest_unpaid_at: column(row, "oldest_unpaid_at")?,
        aging: Aging {
            current: column(row, "current")?,
            days_1_30: column(row, "d30")?,
            days_31_60: column(row, "d60")?,
            days_61_90: column(row, "d90")?,
            over_90: column(row, "over_90")?,
        },
    })
}

/// Customers with a purchase past due and not fully settled, oldest debt
/// first, as of `as_of`: due at its due_at, or `days` after it was made.
/// Each is handed to `each` as its row arrives, in report order; the rows
/// are never gathered. PostgreSQL sends the first only once the whole
/// report is computed (it is sorted), so a failure of the query itself
/// comes before any customer.
pub async fn overdue(
    tx: &TenantTx,
    as_of: DateTime<Utc>,
    days: Option<i32>,
    each: &mut (dyn FnMut(OverdueCustomer) + Send),
) -> Result<(), DbError> {
    let business = tx.business_id();
    // Due `days` after it was made: compare created_at with bounds `days`
    // earlier (OVERDUE_SQL). Days are 24 hours here, as in the buckets.
    let as_of = as_of - TimeDelta::days(i64::from(days.unwrap_or(0)));
    let bounds = [1, 2, 3].map(|months| as_of - TimeDelta::days(30 * months));
    let rows = tx
        .query_stream(
            OVERDUE_SQL,
            &[
                (&business, Type::UUID),
                (&as_of, Type::TIMESTAMPTZ),
                (&bounds[0], Type::TIMESTAMPTZ),
                (&bounds[1], Type::TIMESTAMPTZ),
                (&bounds[2], Type::TIMESTAMPTZ),
                (&days, Type::INT4),
            ],
        )
        .await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.try_next().await? {
        each(overdue_customer(&row)?);
    }
    Ok(())
}

pub(super) const STATEMENTS: &[Statement] = &[statement!(
    OVERDUE_SQL,
    &[
        Type::UUID,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
        Type::INT4,
    ],
    OVERDUE_CUSTOMER
)];
