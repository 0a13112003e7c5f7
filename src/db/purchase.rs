//! The purchase: one call of `ontab_purchase` (migrations/0004), which locks
//! the customer, then the products in id order, checks stock and credit on
//! the rows it locked, and writes order, lines, stock and ledger entry; or,
//! for a group-committed batch, one call of `ontab_purchase_batch` for all
//! of its orders.

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

const PURCHASE_BATCH: &str = "SELECT ontab_purchase_batch($1, $2, $3, $4, $5, $6)";
const PURCHASE_BATCH_TYPES: [Type; 6] = [
    Type::UUID_ARRAY,
    Type::UUID_ARRAY,
    Type::UUID_ARRAY,
    Type::INT4_ARRAY,
    Type::UUID_ARRAY,
    Type::INT8_ARRAY,
];

/// Readies the batch statement for pipelined use (see `TenantTx::prepare`).
pub async fn prepare_batch(tx: &TenantTx) -> Result<(), DbError> {
    tx.prepare(PURCHASE_BATCH, &PURCHASE_BATCH_TYPES).await
}

/// Several purchases in one call of `ontab_purchase_batch` (migrations/0011):
/// each decided, in the order given, against the state the ones before it
/// left, exactly as if they ran one after another; the outcomes in the same
/// order.
pub async fn execute_batch(
    tx: &TenantTx,
    orders: &[(Uuid, &Lines)],
) -> Result<Vec<Result<Order, Refusal>>, DbError> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let order_ids: Vec<Uuid> = orders.iter().map(|_| Uuid::now_v7()).collect();
    let entry_ids: Vec<Uuid> = orders.iter().map(|_| Uuid::now_v7()).collect();
    let customer_ids: Vec<Uuid> = orders.iter().map(|(customer, _)| *customer).collect();
    let mut line_orders = Vec::new();
    let mut product_ids = Vec::new();
    let mut quantities = Vec::new();
    for (index, (_, lines)) in (1_i32..).zip(orders) {
        for line in lines.iter() {
            line_orders.push(index);
            product_ids.push(line.product_id);
            quantities.push(line.quantity);
        }
    }
    let row = tx
        .query_one(
            PURCHASE_BATCH,
            &[
                (&order_ids, PURCHASE_BATCH_TYPES[0].clone()),
                (&entry_ids, PURCHASE_BATCH_TYPES[1].clone()),
                (&customer_ids, PURCHASE_BATCH_TYPES[2].clone()),
                (&line_orders, PURCHASE_BATCH_TYPES[3].clone()),
                (&product_ids, PURCHASE_BATCH_TYPES[4].clone()),
                (&quantities, PURCHASE_BATCH_TYPES[5].clone()),
            ],
        )
        .await?;
    let answers: Vec<serde_json::Value> = row.try_get(0)?;
    if answers.len() != orders.len() {
        return Err(DbError::Decode(format!(
            "ontab_purchase_batch answered {} of {} orders",
            answers.len(),
            orders.len()
        )));
    }
    answers
        .into_iter()
        .map(|answer| decode_outcome(answer, "order"))
        .collect()
}
