//! Orders and their returns: immutable records, read here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::{DbError, TenantTx};

/// One line of an order or a return, at the order's unit price.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Item {
    pub product_id: Uuid,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
}

/// Goods taken back from an order, credited to the customer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Return {
    pub id: Uuid,
    pub order_id: Uuid,
    /// Credited amount: sum of quantity × the order's unit price.
    pub amount: i64,
    pub items: Vec<Item>,
    pub created_at: DateTime<Utc>,
}

/// A completed purchase, never changed after it is written.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub total: i64,
    pub created_at: DateTime<Utc>,
    pub items: Vec<Item>,
    /// Returns made against this order, oldest first.
    #[serde(default)]
    pub returns: Vec<Return>,
}

impl Order {
    pub fn key(&self) -> CreatedKey {
        CreatedKey {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

// Each order is assembled as JSON in one statement, lines and returns
// included, rather than with a query per order.
const ORDER_JSON: &str = "jsonb_build_object(
    'id', o.id, 'customer_id', o.customer_id, 'total', o.total, 'created_at', o.created_at,
    'items', (SELECT jsonb_agg(jsonb_build_object('product_id', i.product_id, 'quantity', i.quantity,
                                                  'unit_price', i.unit_price, 'line_total', i.line_total)
                               ORDER BY i.line_no)
                FROM order_items i WHERE i.business_id = o.business_id AND i.order_id = o.id),
    'returns', coalesce((
        SELECT jsonb_agg(jsonb_build_object('id', r.id, 'order_id', r.order_id, 'amount', r.amount,
                                            'created_at', r.created_at,
                                            'items', (SELECT jsonb_agg(jsonb_build_object(
                                                          'product_id', ri.product_id, 'quantity', ri.quantity,
                                                          'unit_price', ri.unit_price, 'line_total', ri.line_total)
                                                          ORDER BY ri.line_no)
                                                        FROM return_items ri
                                                       WHERE ri.business_id = r.business_id AND ri.return_id = r.id))
                         ORDER BY r.created_at, r.id)
          FROM returns r WHERE r.business_id = o.business_id AND r.order_id = o.id), '[]'::jsonb))";

fn decode(value: serde_json::Value) -> Result<Order, DbError> {
    serde_json::from_value(value).map_err(|error| DbError::Decode(format!("order: {error}")))
}

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<Order>, DbError> {
    let business = tx.business_id();
    let sql = format!("SELECT {ORDER_JSON} FROM orders o WHERE o.business_id = $1 AND o.id = $2");
    let row = tx
        .query_opt(&sql, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?;
    row.map(|row| decode(row.get(0))).transpose()
}

/// Orders newest first, optionally of one customer.
pub async fn list(
    tx: &TenantTx,
    customer_id: Option<Uuid>,
    page: &Page<CreatedKey>,
) -> Result<Vec<Order>, DbError> {
    let business = tx.business_id();
    let (before_at, before_id) = match page.after {
        Some(key) => (Some(key.created_at), Some(key.id)),
        None => (None, None),
    };
    let limit = page.fetch_limit();
    let sql = format!(
        "SELECT {ORDER_JSON} FROM orders o
          WHERE o.business_id = $1
            AND ($2::uuid IS NULL OR o.customer_id = $2)
            AND ($3::timestamptz IS NULL OR (o.created_at, o.id) < ($3, $4))
          ORDER BY o.created_at DESC, o.id DESC
          LIMIT $5"
    );
    let rows = tx
        .query(
            &sql,
            &[
                (&business, Type::UUID),
                (&customer_id, Type::UUID),
                (&before_at, Type::TIMESTAMPTZ),
                (&before_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(|row| decode(row.get(0))).collect()
}
