//! A write-off: bad debt forgiven, with its reason. A ledger credit like a
//! payment (it settles the oldest purchases first), never above the
//! balance; allowed while the customer is on hold, refused once closed.

use uuid::Uuid;

use crate::db::write_off;
use crate::domain::records::LedgerEntry;
use crate::domain::{Positive, Reason, Validator};

use super::idempotency::{Once, Outcome};
use super::{App, AppError, Deadline, Tenant};

/// A write-off as asked for, before validation.
#[derive(Debug, Clone)]
pub struct WriteOffRequest {
    pub amount: i128,
    pub reason: String,
}

/// A valid write-off.
#[derive(Debug, Clone)]
pub struct WriteOff {
    amount: Positive,
    reason: Reason,
}

impl WriteOff {
    pub fn parse(request: WriteOffRequest) -> Result<Self, AppError> {
        let mut check = Validator::default();
        let amount = check.check(Positive::parse("amount", request.amount));
        let reason = check.check(Reason::parse_required("reason", &request.reason));
        Ok(check.finish(|| {
            Some(Self {
                amount: amount?,
                reason: reason?,
            })
        })?)
    }
}

pub async fn record(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    once: &Once<'_, LedgerEntry>,
    customer_id: Uuid,
    write_off: WriteOff,
) -> Result<Outcome<LedgerEntry>, AppError> {
    let outcome = app
        .run_once(tenant, deadline, once, move |tx| {
            let WriteOff { amount, reason } = write_off.clone();
            Box::pin(
                async move { Ok(write_off::execute(tx, customer_id, amount, &reason).await??) },
            )
        })
        .await;
    let label = match &outcome {
        Ok(Outcome::Fresh(_)) => "written_off",
        Ok(Outcome::Replayed(_)) => "replayed",
        Err(error) => error.code().as_str(),
    };
    metrics::counter!("ontab_write_offs_total", "outcome" => label).increment(1);
    outcome
}
