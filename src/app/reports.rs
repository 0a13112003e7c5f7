//! The overdue report: who owes what, and for how long.

use chrono::{DateTime, Utc};

use crate::db::reports;
use crate::domain::FieldError;
use crate::domain::records::OverdueCustomer;

use super::{App, AppError, Deadline, Tenant};

/// A hundred years: anything longer is a typo, not a payment term.
pub const MAX_DAYS: i32 = 36_500;

/// What a report is asked for: as of one instant, and how purchases fall due.
#[derive(Debug, Clone, Copy)]
pub struct OverdueReport {
    pub as_of: DateTime<Utc>,
    /// `None`: each purchase is due at its own due date.
    pub days: Option<i32>,
}

impl OverdueReport {
    /// The report as of now; `days` must be 0..=`MAX_DAYS`.
    pub fn new(days: Option<i64>) -> Result<Self, AppError> {
        let days = days
            .map(|days| {
                i32::try_from(days)
                    .ok()
                    .filter(|days| (0..=MAX_DAYS).contains(days))
                    .ok_or_else(|| FieldError::new("days", "must be an integer from 0 to 36500"))
            })
            .transpose()?;
        Ok(Self {
            as_of: Utc::now(),
            days,
        })
    }
}

/// Where the report's customers go, one at a time, in report order.
pub trait OverdueSink: Send + 'static {
    fn customer(&mut self, customer: OverdueCustomer);
}

/// Customers with a purchase past due not yet settled (FIFO): due at its
/// due date (the customer's terms when it was made), or, with `days`, that
/// many days after it was made. Each goes to `sink` as it is read, oldest
/// debt first, and none is held here; the sink comes back once all were.
/// An error after some customers went to the sink means the report is
/// incomplete: what the sink made of them must be discarded.
pub async fn overdue<S: OverdueSink>(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    report: OverdueReport,
    mut sink: S,
) -> Result<S, AppError> {
    let OverdueReport { as_of, days } = report;
    app.read(tenant, deadline, move |tx| {
        Box::pin(async move {
            reports::overdue(tx, as_of, days, &mut |customer| sink.customer(customer)).await?;
            Ok(sink)
        })
    })
    .await
}
