//! Adjusting stock outside purchases and returns (counted, damaged,
//! restocked): never below zero, always with its reason recorded.

use uuid::Uuid;

use crate::db::stock;
use crate::domain::records::Adjusted;
use crate::domain::{Delta, Reason, Validator};

use super::idempotency::{Once, Outcome};
use super::{App, AppError, Deadline, Tenant};

/// An adjustment as asked for, before validation.
#[derive(Debug, Clone)]
pub struct AdjustmentRequest {
    pub delta: i128,
    pub reason: String,
}

/// A valid adjustment.
#[derive(Debug, Clone)]
pub struct Adjustment {
    delta: Delta,
    reason: Reason,
}

impl Adjustment {
    pub fn parse(request: AdjustmentRequest) -> Result<Self, AppError> {
        let mut check = Validator::default();
        let delta = check.check(Delta::parse("delta", request.delta));
        let reason = check.check(Reason::parse("reason", &request.reason));
        Ok(check.finish(|| {
            Some(Self {
                delta: delta?,
                reason: reason?,
            })
        })?)
    }
}

pub async fn adjust(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    once: &Once<'_, Adjusted>,
    product_id: Uuid,
    adjustment: Adjustment,
) -> Result<Outcome<Adjusted>, AppError> {
    app.run_once(tenant, deadline, once, move |tx| {
        let Adjustment { delta, reason } = adjustment.clone();
        Box::pin(async move { Ok(stock::adjust(tx, product_id, delta, &reason).await??) })
    })
    .await
}
