//! A payment against a customer's balance, never above it.

use uuid::Uuid;

use crate::db::payment;
use crate::domain::records::LedgerEntry;
use crate::domain::{Positive, Validator};

use super::idempotency::{Once, Outcome};
use super::{App, AppError, Deadline, Tenant};

/// A payment as asked for, before validation.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub customer_id: Uuid,
    pub amount: i128,
}

/// A valid payment.
#[derive(Debug, Clone)]
pub struct Payment {
    customer_id: Uuid,
    amount: Positive,
}

impl Payment {
    pub fn parse(request: PaymentRequest) -> Result<Self, AppError> {
        let mut check = Validator::default();
        let amount = check.check(Positive::parse("amount", request.amount));
        Ok(check.finish(|| {
            Some(Self {
                customer_id: request.customer_id,
                amount: amount?,
            })
        })?)
    }
}

pub async fn record(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    once: &Once<'_, LedgerEntry>,
    payment: Payment,
) -> Result<Outcome<LedgerEntry>, AppError> {
    let (customer_id, amount) = (payment.customer_id, payment.amount);
    app.run_once(tenant, deadline, once, move |tx| {
        Box::pin(async move { Ok(payment::execute(tx, customer_id, amount).await??) })
    })
    .await
}
