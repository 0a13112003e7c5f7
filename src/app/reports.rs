//! The overdue report: who owes what, and for how long.

use chrono::{DateTime, Utc};

use crate::db::reports;
use crate::domain::FieldError;
use crate::domain::records::OverdueCustomer;

use super::{App, AppError, Deadline, Tenant};

/// A hundred years: anything longer is a typo, not a payment term.
pub const MAX_DAYS: i32 = 36_500;

/// The report as of one instant.
#[derive(Debug, Clone)]
pub struct OverdueReport {
    pub as_of: DateTime<Utc>,
    /// `None`: each purchase is due at its own due date.
    pub days: Option<i32>,
    pub customers: Vec<OverdueCustomer>,
}

/// Customers with a purchase past due not yet settled (FIFO): due at its
/// due date (the customer's terms when it was made), or, with `days`, that
/// many days after it was made.
pub async fn overdue(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    days: Option<i64>,
) -> Result<OverdueReport, AppError> {
    let days = days
        .map(|days| {
            i32::try_from(days)
                .ok()
                .filter(|days| (0..=MAX_DAYS).contains(days))
                .ok_or_else(|| FieldError::new("days", "must be an integer from 0 to 36500"))
        })
        .transpose()?;
    let as_of = Utc::now();
    let customers = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move { Ok(reports::overdue(tx, as_of, days).await?) })
        })
        .await?;
    Ok(OverdueReport {
        as_of,
        days,
        customers,
    })
}
