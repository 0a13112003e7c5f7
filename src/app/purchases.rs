//! A purchase on credit: several lines, all or nothing, at today's prices.
//! Under load, purchases of one business are group-committed
//! ([`super::group_commit`]); alone, each runs in its own transaction. Both
//! end in the same SQL function's rules (`db::purchase`).

use std::sync::Arc;

use uuid::Uuid;

use crate::db::purchase;
use crate::domain::Lines;
use crate::domain::records::Order;

use super::idempotency::{Once, Outcome};
use super::{App, AppError, Deadline, Tenant};

/// A valid purchase: the customer and the merged lines.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub customer_id: Uuid,
    pub lines: Lines,
}

impl Purchase {
    /// `items` as sent: product and quantity (possibly beyond i64).
    pub fn parse(customer_id: Uuid, items: &[(Uuid, i128)]) -> Result<Self, AppError> {
        Ok(Self {
            customer_id,
            lines: Lines::parse("items", items)?,
        })
    }
}

pub async fn buy(
    app: &Arc<App>,
    tenant: &Tenant,
    deadline: Deadline,
    once: &Once<'_, Order>,
    purchase: Purchase,
) -> Result<Outcome<Order>, AppError> {
    match &app.group_commit {
        Some(group) => group.submit(app, tenant, deadline, once, purchase).await,
        None => {
            let outcome = buy_alone(app, tenant, deadline, &deadline, once, &purchase).await;
            count(&outcome);
            outcome
        }
    }
}

/// One purchase in its own transaction.
pub(crate) async fn buy_alone(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    gate: &dyn super::transaction::CommitGate,
    once: &Once<'_, Order>,
    purchase: &Purchase,
) -> Result<Outcome<Order>, AppError> {
    app.run_once_gated(tenant, deadline, gate, once, move |tx| {
        let Purchase { customer_id, lines } = purchase.clone();
        Box::pin(async move { Ok(purchase::execute(tx, customer_id, &lines).await??) })
    })
    .await
}

/// Counts how a purchase ended: `created`, a refusal's code, or a replay.
pub(crate) fn count(outcome: &Result<Outcome<Order>, AppError>) {
    let label = match outcome {
        Ok(Outcome::Fresh(_)) => "created",
        Ok(Outcome::Replayed(_)) => "replayed",
        Err(error) => error.code().as_str(),
    };
    metrics::counter!("ontab_purchases_total", "outcome" => label).increment(1);
}
