//! Customers, their balance (the newest ledger entry's balance_after), and
//! the history of their limit, status and terms.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column, decode_value_outcome};
use crate::domain::records::{Change, Customer, CustomerChange};
use crate::domain::{AccountStatus, Name, NonNegative, PaymentTerms, Refusal};

// The balance is one index probe on (business_id, customer_id, seq). What
// holds reserve, less what expired holds still count there (released at
// the next decision about the customer, or by the sweep): the sum
// ontab_expired_hold_credit makes, written out, because a distributed
// PostgreSQL (Citus) runs this statement on the node holding the business
// and refuses a function there that reads another table. Every table is
// pinned to the business (`$1` in every statement using this), so that
// Citus can route the whole statement to that node.
macro_rules! select_customer {
    () => {
        "SELECT c.id, c.name, c.credit_limit, c.status, c.payment_terms_days, c.created_at,
                c.held - (SELECT coalesce(sum(p.total), 0)::bigint
                            FROM pending_holds p
                           WHERE p.business_id = $1 AND p.customer_id = c.id
                             AND p.expires_at <= now()) AS held,
                coalesce((SELECT l.balance_after FROM credit_ledger l
                           WHERE l.business_id = $1 AND l.customer_id = c.id
                           ORDER BY l.seq DESC LIMIT 1), 0) AS balance
           FROM customers c "
    };
}

fn status(text: &str) -> Result<AccountStatus, DbError> {
    AccountStatus::parse("status", text)
        .map_err(|_| DbError::Decode(format!("customer status `{text}`")))
}

/// The columns `customer` reads.
const CUSTOMER: &[Column] = &[
    Column::named::<Uuid>("id"),
    Column::named::<String>("name"),
    Column::named::<i64>("credit_limit"),
    Column::named::<i64>("balance"),
    Column::named::<i64>("held"),
    Column::named::<&str>("status"),
    Column::named::<i32>("payment_terms_days"),
    Column::named::<DateTime<Utc>>("created_at"),
];

fn customer(row: &Row) -> Result<Customer, DbError> {
    Ok(Customer {
        id: column(row, "id")?,
        name: column(row, "name")?,
        credit_limit: column(row, "credit_limit")?,
        balance: column(row, "balance")?,
        held: column(row, "held")?,
        status: status(column(row, "status")?)?,
        payment_terms_days: column(row, "payment_terms_days")?,
        created_at: column(row, "created_at")?,
    })
}

/// The customer's position in the list.
pub fn key(customer: &Customer) -> CreatedKey {
    CreatedKey {
        created_at: customer.created_at,
        id: customer.id,
    }
}

// Terms left null default to the business's (a trigger, 0002).
const CREATE: &str =
    "INSERT INTO customers (business_id, id, name, credit_limit, status, payment_terms_days)
                      VALUES ($1, $2, $3, $4, $5, $6)
                      RETURNING id, name, credit_limit, status, payment_terms_days, created_at,
                                0::bigint AS balance, 0::bigint AS held";

/// A new customer as valid values; `payment_terms` `None` takes the
/// business's.
pub struct NewCustomer<'a> {
    pub name: &'a Name,
    pub credit_limit: NonNegative,
    pub status: AccountStatus,
    pub payment_terms: Option<PaymentTerms>,
}

pub async fn create(tx: &TenantTx, new: &NewCustomer<'_>) -> Result<Customer, DbError> {
    let id = Uuid::now_v7();
    let business = tx.business_id();
    let (name, limit, status) = (
        new.name.as_str(),
        new.credit_limit.get(),
        new.status.as_str(),
    );
    let days = new.payment_terms.map(PaymentTerms::days);
    let row = tx
        .query_one(
            CREATE,
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&limit, Type::INT8),
                (&status, Type::TEXT),
                (&days, Type::INT4),
            ],
        )
        .await?;
    customer(&row)
}

const GET: &str = concat!(select_customer!(), "WHERE c.business_id = $1 AND c.id = $2");

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<Customer>, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_opt(GET, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?;
    row.as_ref().map(customer).transpose()
}

const LIST: &str = concat!(
    select_customer!(),
    "WHERE c.business_id = $1
       AND ($2::timestamptz IS NULL OR (c.created_at, c.id) > ($2, $3))
     ORDER BY c.created_at, c.id
     LIMIT $4"
);

pub async fn list(tx: &TenantTx, page: &Page<CreatedKey>) -> Result<Vec<Customer>, DbError> {
    let business = tx.business_id();
    let (after_at, after_id) = page.after_parts();
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            LIST,
            &[
                (&business, Type::UUID),
                (&after_at, Type::TIMESTAMPTZ),
                (&after_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(customer).collect()
}

/// Changes to a customer as valid values; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub name: Option<Name>,
    pub credit_limit: Option<NonNegative>,
    pub status: Option<AccountStatus>,
    pub payment_terms: Option<PaymentTerms>,
}

const UPDATE: &str = "SELECT ontab_update_customer_for($1, $2, $3, $4, $5, $6)";

/// A customer as changed, and the status it had before.
#[derive(Debug, Clone)]
pub struct Updated {
    pub customer: Customer,
    pub status_was: AccountStatus,
}

/// Changes name, limit, status and/or terms, or answers why not: unknown,
/// closed for good, or closing with a balance. A limit below the balance is
/// allowed: it only blocks new purchases. The customer's row lock orders the
/// change against every ledger entry, and the triggers record it.
pub async fn update(
    tx: &TenantTx,
    id: Uuid,
    changes: &Changes,
) -> Result<Result<Updated, Refusal>, DbError> {
    let name = changes.name.as_ref().map(Name::as_str);
    let limit = changes.credit_limit.map(NonNegative::get);
    let status = changes.status.map(AccountStatus::as_str);
    let days = changes.payment_terms.map(PaymentTerms::days);
    let row = tx
        .query_one(
            UPDATE,
            &[
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&limit, Type::INT8),
                (&status, Type::TEXT),
                (&days, Type::INT4),
                (&tx.business_id(), Type::UUID),
            ],
        )
        .await?;
    let answer: serde_json::Value = column(&row, 0)?;
    let status_was = match answer.get("status_was").and_then(serde_json::Value::as_str) {
        Some(text) => Some(self::status(text)?),
        None => None,
    };
    if let Err(refusal) = decode_value_outcome::<bool>(answer, "updated")? {
        return Ok(Err(refusal));
    }
    let status_was =
        status_was.ok_or_else(|| DbError::Decode("an update without `status_was`".to_owned()))?;
    match get(tx, id).await? {
        Some(customer) => Ok(Ok(Updated {
            customer,
            status_was,
        })),
        None => Ok(Err(Refusal::not_found("customer", id))),
    }
}

const EXISTS: &str = "SELECT 1 FROM customers WHERE business_id = $1 AND id = $2";

/// Whether the business has this customer.
pub async fn exists(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    let business = tx.business_id();
    Ok(tx
        .query_opt(EXISTS, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?
        .is_some())
}

// Each row holds the values in force from then on; the previous row (LAG)
// the values before. The window starts at the change the cursor points at
// (or the first), so the first row of a page knows the values before it,
// and reads one range of customer_changes_by_customer.
const HISTORY: &str = "
SELECT * FROM (
    SELECT id, changed_at, changed_by,
           lag(credit_limit) OVER w AS old_credit_limit, credit_limit,
           lag(status) OVER w AS old_status, status,
           lag(payment_terms_days) OVER w AS old_payment_terms_days, payment_terms_days
      FROM customer_changes
     WHERE business_id = $1 AND customer_id = $2
       AND id >= (SELECT coalesce(max(p.id), 0) FROM customer_changes p
                   WHERE p.business_id = $1 AND p.customer_id = $2 AND p.id <= $3)
    WINDOW w AS (ORDER BY id)
) AS changes
 WHERE id > $3
 ORDER BY id
 LIMIT $4";

/// The columns `change` reads.
const CHANGE: &[Column] = &[
    Column::named::<i64>("id"),
    Column::named::<DateTime<Utc>>("changed_at"),
    Column::named::<String>("changed_by"),
    Column::named::<Option<i64>>("old_credit_limit"),
    Column::named::<i64>("credit_limit"),
    Column::named::<Option<String>>("old_status"),
    Column::named::<&str>("status"),
    Column::named::<Option<i32>>("old_payment_terms_days"),
    Column::named::<i32>("payment_terms_days"),
];

fn change(row: &Row) -> Result<CustomerChange, DbError> {
    let old_status: Option<String> = column(row, "old_status")?;
    Ok(CustomerChange {
        id: column(row, "id")?,
        changed_at: column(row, "changed_at")?,
        changed_by: column(row, "changed_by")?,
        credit_limit: Change {
            old: column(row, "old_credit_limit")?,
            new: column(row, "credit_limit")?,
        },
        status: Change {
            old: old_status.as_deref().map(status).transpose()?,
            new: status(column(row, "status")?)?,
        },
        payment_terms_days: Change {
            old: column(row, "old_payment_terms_days")?,
            new: column(row, "payment_terms_days")?,
        },
    })
}

/// The customer's changes after change `page.after` (its id), oldest first.
pub async fn history(
    tx: &TenantTx,
    customer_id: Uuid,
    page: &Page<i64>,
) -> Result<Vec<CustomerChange>, DbError> {
    let business = tx.business_id();
    let after = page.after.unwrap_or(0);
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            HISTORY,
            &[
                (&business, Type::UUID),
                (&customer_id, Type::UUID),
                (&after, Type::INT8),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(change).collect()
}

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        CREATE,
        &[
            Type::UUID,
            Type::UUID,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::INT4,
        ],
        CUSTOMER
    ),
    statement!(GET, &[Type::UUID, Type::UUID], CUSTOMER),
    statement!(
        LIST,
        &[Type::UUID, Type::TIMESTAMPTZ, Type::UUID, Type::INT8],
        CUSTOMER
    ),
    statement!(
        UPDATE,
        &[
            Type::UUID,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::INT4,
            Type::UUID
        ],
        &[Column::at::<serde_json::Value>(0)]
    ),
    statement!(EXISTS, &[Type::UUID, Type::UUID], &[]),
    statement!(
        HISTORY,
        &[Type::UUID, Type::UUID, Type::INT8, Type::INT8],
        CHANGE
    ),
];
