//! A payment: one call of `ontab_pay`, which locks the customer, refuses
//! more than the balance, and appends a ledger entry.

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column, decode_outcome};
use crate::domain::records::LedgerEntry;
use crate::domain::{Positive, Refusal};

const PAY: &str = "SELECT ontab_pay_for($1, $2, $3, $4)";

pub async fn execute(
    tx: &TenantTx,
    customer_id: Uuid,
    amount: Positive,
) -> Result<Result<LedgerEntry, Refusal>, DbError> {
    let (entry_id, amount) = (Uuid::now_v7(), amount.get());
    let row = tx
        .query_one(
            PAY,
            &[
                (&entry_id, Type::UUID),
                (&customer_id, Type::UUID),
                (&amount, Type::INT8),
                (&tx.business_id(), Type::UUID),
            ],
        )
        .await?;
    decode_outcome(column(&row, 0)?, "entry")
}

pub(super) const STATEMENTS: &[Statement] = &[statement!(
    PAY,
    &[Type::UUID, Type::UUID, Type::INT8, Type::UUID],
    &[Column::at::<serde_json::Value>(0)]
)];
