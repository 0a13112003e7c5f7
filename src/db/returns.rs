//! A return: one call of `ontab_return`, which locks the buyer and the
//! products, refuses more than was bought minus earlier returns, puts the
//! stock back and credits the ledger at the order's prices.

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column, decode_outcome};
use crate::domain::records::Return;
use crate::domain::{Lines, Refusal};

const RETURN: &str = "SELECT ontab_return_for($1, $2, $3, $4, $5, $6)";

pub async fn execute(
    tx: &TenantTx,
    order_id: Uuid,
    lines: &Lines,
) -> Result<Result<Return, Refusal>, DbError> {
    let (return_id, entry_id) = (Uuid::now_v7(), Uuid::now_v7());
    let (product_ids, quantities) = (lines.product_ids(), lines.quantities());
    let row = tx
        .query_one(
            RETURN,
            &[
                (&return_id, Type::UUID),
                (&entry_id, Type::UUID),
                (&order_id, Type::UUID),
                (&product_ids, Type::UUID_ARRAY),
                (&quantities, Type::INT8_ARRAY),
                (&tx.business_id(), Type::UUID),
            ],
        )
        .await?;
    decode_outcome(column(&row, 0)?, "return")
}

pub(super) const STATEMENTS: &[Statement] = &[statement!(
    RETURN,
    &[
        Type::UUID,
        Type::UUID,
        Type::UUID,
        Type::UUID_ARRAY,
        Type::INT8_ARRAY,
        Type::UUID,
    ],
    &[Column::at::<serde_json::Value>(0)]
)];
