//! The purchase: one call of `ontab_purchase` (through
//! `ontab_purchase_for`, migrations/0015), which locks the customer,
//! then the products in id order, checks stock and credit on the rows it
//! locked, and writes order, lines, stock and ledger entry; or, for a
//! group-committed batch, one call of `ontab_purchase_batch` for all of its
//! orders.

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{DbError, JsonText, TenantTx, column, decode_outcome};
use crate::domain::records::Order;
use crate::domain::{Lines, Refusal};

const PURCHASE: &str = "SELECT ontab_purchase_for($1, $2, $3, $4, $5, $6)";

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
                (&order_id, Type::UUID),
                (&entry_id, Type::UUID),
                (&customer_id, Type::UUID),
                (&product_ids, Type::UUID_ARRAY),
                (&quantities, Type::INT8_ARRAY),
                (&tx.business_id(), Type::UUID),
            ],
        )
        .await?;
    decode_outcome(column(&row, 0)?, "order")
}

// A batch locks its customers first, in id order (the products come last,
// inside the batch function), so that stored Idempotency-Key outcomes read
// afterwards include those of a concurrent request that held a lock. One
// probe of the primary key per id, locked as the nested loop reaches it
// (the ids come sorted): as `id = ANY ($2) ORDER BY id`, the plan prepared
// once per connection walked every customer of the business and compared
// each with every id (1,000 read for 19 locked, 3.4 ms; migrations/0026).
const LOCK_CUSTOMERS: &str = "SELECT 1 FROM unnest($2::uuid[]) AS k (id)
      CROSS JOIN LATERAL (SELECT 1 FROM customers c
                           WHERE c.business_id = $1 AND c.id = k.id
                             FOR UPDATE) c";
const LOCK_CUSTOMERS_TYPES: [Type; 2] = [Type::UUID, Type::UUID_ARRAY];

const PURCHASE_BATCH: &str = "SELECT ontab_purchase_batch_for($1, $2, $3, $4, $5, $6, $7)";
const PURCHASE_BATCH_TYPES: [Type; 7] = [
    Type::UUID_ARRAY,
    Type::UUID_ARRAY,
    Type::UUID_ARRAY,
    Type::INT4_ARRAY,
    Type::UUID_ARRAY,
    Type::INT8_ARRAY,
    Type::UUID,
];

/// Readies the batch statements for pipelined use (see `TenantTx::prepare`).
pub async fn prepare_batch(tx: &TenantTx) -> Result<(), DbError> {
    tx.prepare(LOCK_CUSTOMERS, &LOCK_CUSTOMERS_TYPES).await?;
    tx.prepare(PURCHASE_BATCH, &PURCHASE_BATCH_TYPES).await
}

/// Locks these customers (ids sorted and unique) for the rest of the
/// transaction.
pub async fn lock_customers(tx: &TenantTx, customer_ids: &[Uuid]) -> Result<(), DbError> {
    let business = tx.business_id();
    tx.query(
        LOCK_CUSTOMERS,
        &[
            (&business, LOCK_CUSTOMERS_TYPES[0].clone()),
            (&customer_ids, LOCK_CUSTOMERS_TYPES[1].clone()),
        ],
    )
    .await?;
    Ok(())
}

/// Several purchases in one call of `ontab_purchase_batch`: each decided, in
/// the order given, against the state the ones before it left, exactly as if
/// they ran one after another; the outcomes in the same order.
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
                (&tx.business_id(), PURCHASE_BATCH_TYPES[6].clone()),
            ],
        )
        .await?;
    let answers: Vec<JsonText<'_>> = column(&row, 0)?;
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

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        PURCHASE,
        &[
            Type::UUID,
            Type::UUID,
            Type::UUID,
            Type::UUID_ARRAY,
            Type::INT8_ARRAY,
            Type::UUID,
        ],
        &[Column::at::<serde_json::Value>(0)],
    ),
    statement!(LOCK_CUSTOMERS, &LOCK_CUSTOMERS_TYPES, &[]),
    statement!(
        PURCHASE_BATCH,
        &PURCHASE_BATCH_TYPES,
        &[Column::at::<Vec<serde_json::Value>>(0)],
    ),
];
