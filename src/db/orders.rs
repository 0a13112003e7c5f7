//! Orders and their returns: immutable records, read here.

use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column};
use crate::domain::records::Order;

// Each order is assembled as JSON in one statement, lines and returns
// included, rather than with a query per order.
macro_rules! select_order {
    () => {
        "SELECT jsonb_build_object(
            'id', o.id, 'customer_id', o.customer_id, 'total', o.total, 'created_at', o.created_at,
            'due_at', o.due_at, 'hold_id', o.hold_id,
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
                  FROM returns r WHERE r.business_id = o.business_id AND r.order_id = o.id), '[]'::jsonb))
           FROM orders o "
    };
}

/// The column `order` reads: the whole order as JSON.
const ORDER: &[Column] = &[Column::at::<serde_json::Value>(0)];

fn order(row: &Row) -> Result<Order, DbError> {
    serde_json::from_value(column(row, 0)?)
        .map_err(|error| DbError::Decode(format!("order: {error}")))
}

/// The order's position in the list.
pub fn key(order: &Order) -> CreatedKey {
    CreatedKey {
        created_at: order.created_at,
        id: order.id,
    }
}

const GET: &str = concat!(select_order!(), "WHERE o.business_id = $1 AND o.id = $2");

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<Order>, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_opt(GET, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?;
    row.as_ref().map(order).transpose()
}

const LIST: &str = concat!(
    select_order!(),
    "WHERE o.business_id = $1
       AND ($2::uuid IS NULL OR o.customer_id = $2)
       AND ($3::timestamptz IS NULL OR (o.created_at, o.id) < ($3, $4))
     ORDER BY o.created_at DESC, o.id DESC
     LIMIT $5"
);

/// Orders newest first, optionally of one customer.
pub async fn list(
    tx: &TenantTx,
    customer_id: Option<Uuid>,
    page: &Page<CreatedKey>,
) -> Result<Vec<Order>, DbError> {
    let business = tx.business_id();
    let (before_at, before_id) = page.after_parts();
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            LIST,
            &[
                (&business, Type::UUID),
                (&customer_id, Type::UUID),
                (&before_at, Type::TIMESTAMPTZ),
                (&before_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(order).collect()
}

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(GET, &[Type::UUID, Type::UUID], ORDER),
    statement!(
        LIST,
        &[
            Type::UUID,
            Type::UUID,
            Type::TIMESTAMPTZ,
            Type::UUID,
            Type::INT8
        ],
        ORDER
    ),
];
