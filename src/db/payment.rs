//! A payment: one call of `ontab_pay` (migrations/0004), which locks the
//! customer, refuses more than the balance, and appends a ledger entry.

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::ledger::LedgerEntry;
use super::{DbError, TenantTx, decode_outcome};
use crate::domain::{Positive, Refusal};

pub async fn execute(
    tx: &TenantTx,
    customer_id: Uuid,
    amount: Positive,
) -> Result<Result<LedgerEntry, Refusal>, DbError> {
    let (entry_id, amount) = (Uuid::now_v7(), amount.get());
    let row = tx
        .query_one(
            "SELECT ontab_pay($1, $2, $3)",
            &[
                (&entry_id, Type::UUID),
                (&customer_id, Type::UUID),
                (&amount, Type::INT8),
            ],
        )
        .await?;
    decode_outcome(row.get(0), "entry")
}
