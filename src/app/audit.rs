//! `ontab audit`: re-checks, from the stored data alone, every invariant the
//! database is meant to hold, for every business (or one).
//!
//! The guards in the migrations refuse bad writes as they happen; the audit
//! is the independent second opinion: it finds what a disabled trigger, a
//! manual fix in psql, a restored backup or a bug in a guard let through.
//! It needs the migrating role (or a superuser): only it may list the
//! businesses.

use tokio_postgres::Client;
use uuid::Uuid;

use crate::db::audit;
pub use crate::db::audit::Violation;

use super::AppError;

/// What an audit found.
#[derive(Debug, Default)]
pub struct Report {
    pub businesses: usize,
    pub violations: Vec<Violation>,
}

impl Report {
    /// Whether `check` found anything.
    pub fn failed(&self, check: &str) -> bool {
        self.violations.iter().any(|v| v.check == check)
    }
}

/// The checks' names and the rules they hold, in the order they run.
pub fn checks() -> impl Iterator<Item = (&'static str, &'static str)> {
    audit::checks()
}

/// Audits `business`, or every business.
pub async fn audit(client: &mut Client, business: Option<Uuid>) -> Result<Report, AppError> {
    let businesses = match business {
        Some(id) => vec![id],
        None => audit::business_ids(client).await?,
    };
    let mut report = Report::default();
    for business_id in businesses {
        let violations = audit::check_business(client, business_id)
            .await?
            .ok_or_else(|| {
                AppError::Invalid(vec![crate::domain::FieldError::new(
                    "business",
                    format!("no business {business_id}"),
                )])
            })?;
        report.violations.extend(violations);
        report.businesses += 1;
    }
    Ok(report)
}
