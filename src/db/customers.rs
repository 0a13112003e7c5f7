//! Customers and their balance (the newest ledger entry's balance_after).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::{DbError, TenantTx};
use crate::domain::{Name, NonNegative};

/// A customer as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: Uuid,
    pub name: String,
    pub credit_limit: i64,
    /// Sum of the ledger: what the customer owes now (negative: in credit).
    pub balance: i64,
    /// `max(credit_limit - balance, 0)`.
    pub available_credit: i64,
    pub created_at: DateTime<Utc>,
}

impl Customer {
    fn from_row(row: &Row) -> Self {
        let credit_limit: i64 = row.get("credit_limit");
        let balance: i64 = row.get("balance");
        let available =
            (i128::from(credit_limit) - i128::from(balance)).clamp(0, i128::from(i64::MAX));
        Self {
            id: row.get("id"),
            name: row.get("name"),
            credit_limit,
            balance,
            available_credit: i64::try_from(available).unwrap_or(i64::MAX),
            created_at: row.get("created_at"),
        }
    }

    pub fn key(&self) -> CreatedKey {
        CreatedKey {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

// The balance is one index probe on (business_id, customer_id, seq).
const COLUMNS: &str = "c.id, c.name, c.credit_limit, c.created_at,
    coalesce((SELECT l.balance_after FROM credit_ledger l
               WHERE l.business_id = c.business_id AND l.customer_id = c.id
               ORDER BY l.seq DESC LIMIT 1), 0) AS balance";

pub async fn create(
    tx: &TenantTx,
    name: &Name,
    credit_limit: NonNegative,
) -> Result<Customer, DbError> {
    let id = Uuid::now_v7();
    let (business, name, limit) = (tx.business_id(), name.as_str(), credit_limit.get());
    let row = tx
        .query_one(
            "INSERT INTO customers (business_id, id, name, credit_limit) VALUES ($1, $2, $3, $4)
             RETURNING id, name, credit_limit, created_at, 0::bigint AS balance",
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    Ok(Customer::from_row(&row))
}

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<Customer>, DbError> {
    let business = tx.business_id();
    let sql = format!("SELECT {COLUMNS} FROM customers c WHERE c.business_id = $1 AND c.id = $2");
    let row = tx
        .query_opt(&sql, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?;
    Ok(row.as_ref().map(Customer::from_row))
}

pub async fn list(tx: &TenantTx, page: &Page<CreatedKey>) -> Result<Vec<Customer>, DbError> {
    let business = tx.business_id();
    let (after_at, after_id) = match page.after {
        Some(key) => (Some(key.created_at), Some(key.id)),
        None => (None, None),
    };
    let limit = page.fetch_limit();
    let sql = format!(
        "SELECT {COLUMNS} FROM customers c
          WHERE c.business_id = $1
            AND ($2::timestamptz IS NULL OR (c.created_at, c.id) > ($2, $3))
          ORDER BY c.created_at, c.id
          LIMIT $4"
    );
    let rows = tx
        .query(
            &sql,
            &[
                (&business, Type::UUID),
                (&after_at, Type::TIMESTAMPTZ),
                (&after_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    Ok(rows.iter().map(Customer::from_row).collect())
}

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
            "UPDATE customers SET name = coalesce($3, name), credit_limit = coalesce($4, credit_limit)
              WHERE business_id = $1 AND id = $2
             RETURNING id",
            &[(&business, Type::UUID), (&id, Type::UUID), (&name, Type::TEXT), (&limit, Type::INT8)],
        )
        .await?;
    match updated {
        Some(_) => get(tx, id).await,
        None => Ok(None),
    }
}
