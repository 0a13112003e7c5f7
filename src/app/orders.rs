//! Reading orders: immutable records with their returns.

use uuid::Uuid;

use crate::db::orders;
use crate::db::page::{CreatedKey, Listed, Page};
use crate::domain::Refusal;
use crate::domain::records::Order;

use super::{App, AppError, Deadline, Tenant};

pub async fn get(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
) -> Result<Order, AppError> {
    app.read(tenant, deadline, move |tx| {
        Box::pin(async move {
            Ok(orders::get(tx, id)
                .await?
                .ok_or_else(|| Refusal::not_found("order", id))?)
        })
    })
    .await
}

/// Newest first; of one customer when `customer_id` is given.
pub async fn list(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    customer_id: Option<Uuid>,
    page: Page<CreatedKey>,
) -> Result<Listed<Order, CreatedKey>, AppError> {
    let rows = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move { Ok(orders::list(tx, customer_id, &page).await?) })
        })
        .await?;
    let (rows, next) = page.finish(rows, orders::key);
    Ok(Listed { rows, next })
}
