//! Returning goods against an order: stock back, the customer credited at
//! the order's prices, never more than was bought.

use uuid::Uuid;

use crate::db::returns;
use crate::domain::Lines;
use crate::domain::records::Return;

use super::idempotency::{Once, Outcome};
use super::{App, AppError, Deadline, Tenant};

/// The lines of a valid return, merged per product.
#[derive(Debug, Clone)]
pub struct ReturnOfGoods {
    lines: Lines,
}

impl ReturnOfGoods {
    /// `items` as sent: product and quantity (possibly beyond i64).
    pub fn parse(items: &[(Uuid, i128)]) -> Result<Self, AppError> {
        Ok(Self {
            lines: Lines::parse("items", items)?,
        })
    }
}

pub async fn record(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    once: &Once<'_, Return>,
    order_id: Uuid,
    goods: ReturnOfGoods,
) -> Result<Outcome<Return>, AppError> {
    app.run_once(tenant, deadline, once, move |tx| {
        let lines = goods.lines.clone();
        Box::pin(async move { Ok(returns::execute(tx, order_id, &lines).await??) })
    })
    .await
}
