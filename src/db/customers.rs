//! Customers and their balance (the newest ledger entry's balance_after).

use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::{DbError, TenantTx, column};
use crate::domain::records::Customer;
use crate::domain::{Name, NonNegative};

// The balance is one index probe on (business_id, customer_id, seq).
macro_rules! select_customer {
    () => {
        "SELECT c.id, c.name, c.credit_limit, c.created_at,
                coalesce((SELECT l.balance_after FROM credit_ledger l
                           WHERE l.business_id = c.business_id AND l.customer_id = c.id
                           ORDER BY l.seq DESC LIMIT 1), 0) AS balance
           FROM customers c "
    };
}

fn customer(row: &Row) -> Result<Customer, DbError> {
    Ok(Customer {
        id: column(row, "id")?,
        name: column(row, "name")?,
        credit_limit: column(row, "credit_limit")?,
        balance: column(row, "balance")?,
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

const CREATE: &str =
    "INSERT INTO customers (business_id, id, name, credit_limit) VALUES ($1, $2, $3, $4)
                      RETURNING id, name, credit_limit, created_at, 0::bigint AS balance";

pub async fn create(
    tx: &TenantTx,
    name: &Name,
    credit_limit: NonNegative,
) -> Result<Customer, DbError> {
    let id = Uuid::now_v7();
    let (business, name, limit) = (tx.business_id(), name.as_str(), credit_limit.get());
    let row = tx
        .query_one(
            CREATE,
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&limit, Type::INT8),
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

const UPDATE: &str =
    "UPDATE customers SET name = coalesce($3, name), credit_limit = coalesce($4, credit_limit)
                       WHERE business_id = $1 AND id = $2
                      RETURNING id";

/// Changes name and/or limit. A limit below the balance is allowed: it only
/// blocks new purchases. The row lock taken here orders the change against
/// purchases, which lock the same row.
pub async fn update(
    tx: &TenantTx,
    id: Uuid,
    name: Option<&Name>,
    credit_limit: Option<NonNegative>,
) -> Result<Option<Customer>, DbError> {
    let business = tx.business_id();
    let name = name.map(Name::as_str);
    let limit = credit_limit.map(NonNegative::get);
    let updated = tx
        .query_opt(
            UPDATE,
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    match updated {
        Some(_) => get(tx, id).await,
        None => Ok(None),
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
