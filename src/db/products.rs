//! Products: price and stock. Stock only moves through purchases, returns
//! and adjustments, never through an update of the product.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::{DbError, TenantTx};
use crate::domain::{Name, NonNegative};

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    /// Current price in minor units; past orders keep the price they paid.
    pub price: i64,
    pub stock: i64,
    pub created_at: DateTime<Utc>,
}

impl Product {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            name: row.get("name"),
            price: row.get("price"),
            stock: row.get("stock"),
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

pub async fn create(
    tx: &TenantTx,
    name: &Name,
    price: NonNegative,
    stock: NonNegative,
) -> Result<Product, DbError> {
    let id = Uuid::now_v7();
    let (business, name, price, stock) =
        (tx.business_id(), name.as_str(), price.get(), stock.get());
    let row = tx
        .query_one(
            "INSERT INTO products (business_id, id, name, price, stock, initial_stock)
             VALUES ($1, $2, $3, $4, $5, $5)
             RETURNING id, name, price, stock, created_at",
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&price, Type::INT8),
                (&stock, Type::INT8),
            ],
        )
        .await?;
    Ok(Product::from_row(&row))
}

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<Product>, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_opt(
            "SELECT id, name, price, stock, created_at FROM products WHERE business_id = $1 AND id = $2",
            &[(&business, Type::UUID), (&id, Type::UUID)],
        )
        .await?;
    Ok(row.as_ref().map(Product::from_row))
}

pub async fn list(tx: &TenantTx, page: &Page<CreatedKey>) -> Result<Vec<Product>, DbError> {
    let business = tx.business_id();
    let (after_at, after_id) = match page.after {
        Some(key) => (Some(key.created_at), Some(key.id)),
        None => (None, None),
    };
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            "SELECT id, name, price, stock, created_at FROM products
              WHERE business_id = $1
                AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
              ORDER BY created_at, id
              LIMIT $4",
            &[
                (&business, Type::UUID),
                (&after_at, Type::TIMESTAMPTZ),
                (&after_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    Ok(rows.iter().map(Product::from_row).collect())
}

/// Changes name and/or price. Past orders are untouched: each order line
/// stores the unit price it was bought at.
pub async fn update(
    tx: &TenantTx,
    id: Uuid,
    name: Option<&Name>,
    price: Option<NonNegative>,
) -> Result<Option<Product>, DbError> {
    let business = tx.business_id();
    let name = name.map(Name::as_str);
    let price = price.map(NonNegative::get);
    let row = tx
        .query_opt(
            "UPDATE products SET name = coalesce($3, name), price = coalesce($4, price)
              WHERE business_id = $1 AND id = $2
             RETURNING id, name, price, stock, created_at",
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&price, Type::INT8),
            ],
        )
        .await?;
    Ok(row.as_ref().map(Product::from_row))
}
