//! A write-off (bad debt forgiven): one call of `ontab_write_off`, which
//! locks the customer, refuses more than the balance or a closed account,
//! and appends a `write_off` ledger entry with its reason.

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column, decode_outcome};
use crate::domain::records::LedgerEntry;
use crate::domain::{Positive, Reason, Refusal};

const WRITE_OFF: &str = "SELECT ontab_write_off_for($1, $2, $3, $4, $5)";

pub async fn execute(
    tx: &TenantTx,
    customer_id: Uuid,
    amount: Positive,
    reason: &Reason,
) -> Result<Result<LedgerEntry, Refusal>, DbError> {
    let (entry_id, amount, reason) = (Uuid::now_v7(), amount.get(), reason.as_str());
    let row = tx
        .query_one(
            WRITE_OFF,
            &[
                (&entry_id, Type::UUID),
                (&customer_id, Type::UUID),
                (&amount, Type::INT8),
                (&reason, Type::TEXT),
                (&tx.business_id(), Type::UUID),
            ],
        )
        .await?;
    decode_outcome(column(&row, 0)?, "entry")
}

pub(super) const STATEMENTS: &[Statement] = &[statement!(
    WRITE_OFF,
    &[Type::UUID, Type::UUID, Type::INT8, Type::TEXT, Type::UUID],
    &[Column::at::<serde_json::Value>(0)]
)];
