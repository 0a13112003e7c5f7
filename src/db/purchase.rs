//! The purchase: one call of `ontab_purchase` (migrations/0004), which locks
//! the customer, then the products in id order, checks stock and credit on
//! the rows it locked, and writes order, lines, stock and ledger entry.

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::orders::Order;
use super::{DbError, TenantTx, decode_outcome};
use crate::domain::{Lines, Refusal};

const PURCHASE: &str = "SELECT ontab_purchase($1, $2, $3, $4, $5)";
const PURCHASE_TYPES: [Type; 5] = [
    Type::UUID,
    Type::UUID,
    Type::UUID,
    Type::UUID_ARRAY,
    Type::INT8_ARRAY,
];

/// Readies the purchase statement for pipelined use (see `TenantTx::prepare`).
pub async fn prepare(tx: &TenantTx) -> Result<(), DbError> {
    tx.prepare(PURCHASE, &PURCHASE_TYPES).await
}

pub async fn execute(
    tx: &TenantTx,
    customer_id: Uuid,
    lines: &Lines,
) -> Result<Result<Order, Refusal>, DbError> {
    let (order_id, entry_id) = (Uuid::now_v7(), Uuid::now_v7());
    let (product_ids, quantities) = (lines.product_ids(), lines.quantities());
    let row = tx
        .query_one(
            PURCHASE,
            &[
                (&order_id, PURCHASE_TYPES[0].clone()),
                (&entry_id, PURCHASE_TYPES[1].clone()),
                (&customer_id, PURCHASE_TYPES[2].clone()),
                (&product_ids, PURCHASE_TYPES[3].clone()),
                (&quantities, PURCHASE_TYPES[4].clone()),
            ],
        )
        .await?;
    decode_outcome(row.get(0), "order")
}
