//! Stock adjustments (counted, damaged, restocked): one call of
//! `ontab_adjust_stock` (migrations/0004), which locks the product and
//! refuses to take stock below zero.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::products::Product;
use super::{DbError, TenantTx, decode_outcome};
use crate::domain::{Reason, Refusal};

/// One recorded change of stock outside purchases and returns.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockAdjustment {
    pub id: Uuid,
    pub product_id: Uuid,
    pub delta: i64,
    pub reason: String,
    pub stock_after: i64,
    pub created_at: DateTime<Utc>,
}

/// The product after the adjustment, and the adjustment itself.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Adjusted {
    pub product: Product,
    pub adjustment: StockAdjustment,
}

pub async fn adjust(
    tx: &TenantTx,
    product_id: Uuid,
    delta: i64,
    reason: &Reason,
) -> Result<Result<Adjusted, Refusal>, DbError> {
    let (adjustment_id, reason) = (Uuid::now_v7(), reason.as_str());
    let row = tx
        .query_one(
            "SELECT ontab_adjust_stock($1, $2, $3, $4)",
            &[
                (&adjustment_id, Type::UUID),
                (&product_id, Type::UUID),
                (&delta, Type::INT8),
                (&reason, Type::TEXT),
            ],
        )
        .await?;
    let answer: serde_json::Value = row.get(0);
    // The function answers {product, adjustment}; decode both under one key.
    let wrapped = match answer.get("error") {
        Some(_) => answer,
        None => serde_json::json!({ "adjusted": answer }),
    };
    decode_outcome(wrapped, "adjusted")
}
