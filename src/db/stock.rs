//! Stock adjustments (counted, damaged, restocked): one call of
//! `ontab_adjust_stock`, which locks the product and refuses to take stock
//! below zero.

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column, decode_value_outcome};
use crate::domain::records::Adjusted;
use crate::domain::{Delta, Reason, Refusal};

const ADJUST: &str = "SELECT ontab_adjust_stock_for($1, $2, $3, $4, $5)";

pub async fn adjust(
    tx: &TenantTx,
    product_id: Uuid,
    delta: Delta,
    reason: &Reason,
) -> Result<Result<Adjusted, Refusal>, DbError> {
    let (adjustment_id, delta, reason) = (Uuid::now_v7(), delta.get(), reason.as_str());
    let row = tx
        .query_one(
            ADJUST,
            &[
                (&adjustment_id, Type::UUID),
                (&product_id, Type::UUID),
                (&delta, Type::INT8),
                (&reason, Type::TEXT),
                (&tx.business_id(), Type::UUID),
            ],
        )
        .await?;
    let answer: serde_json::Value = column(&row, 0)?;
    // The function answers {product, adjustment}; decode both under one key.
    let wrapped = match answer.get("error") {
        Some(_) => answer,
        None => serde_json::json!({ "adjusted": answer }),
    };
    decode_value_outcome(wrapped, "adjusted")
}

pub(super) const STATEMENTS: &[Statement] = &[statement!(
    ADJUST,
    &[Type::UUID, Type::UUID, Type::INT8, Type::TEXT, Type::UUID],
    &[Column::at::<serde_json::Value>(0)]
)];
