//! The purchase: one call of `ontab_purchase` (migrations/0004), which locks
//! the customer, then the products in id order, checks stock and credit on
//! the rows it locked, and writes order, lines, stock and ledger entry.

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::orders::Order;
use super::{DbError, TenantTx, decode_outcome};
use crate::domain::{Lines, Refusal};

pub async fn execute(
    tx: &TenantTx,
    customer_id: Uuid,
    lines: &Lines,
) -> Result<Result<Order, Refusal>, DbError> {
    let (order_id, entry_id) = (Uuid::now_v7(), Uuid::now_v7());
    let (product_ids, quantities) = (lines.product_ids(), lines.quantities());
    let row = tx
        .query_one(
            "SELECT ontab_purchase($1, $2, $3, $4, $5)",
            &[
                (&order_id, Type::UUID),
                (&entry_id, Type::UUID),
                (&customer_id, Type::UUID),
                (&product_ids, Type::UUID_ARRAY),
                (&quantities, Type::INT8_ARRAY),
            ],
        )
        .await?;
    decode_outcome(row.get(0), "order")
}
