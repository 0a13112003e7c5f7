//! A customer's statement for a period: the balance brought forward, the
//! period's entries and their totals by kind, the balance carried forward
//! and its aging; as JSON pages, or as CSV of every entry however many.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use uuid::Uuid;

use crate::db::customers;
use crate::db::page::Page;
use crate::db::statements::{self, Summary};
use crate::domain::records::{LedgerEntry, Statement};
use crate::domain::{FieldError, Refusal};

use super::{App, AppError, Deadline, Tenant};

/// A period `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

fn month_start(date: NaiveDate) -> Option<DateTime<Utc>> {
    date.with_day(1)?
        .and_hms_opt(0, 0, 0)
        .map(|start| start.and_utc())
}

impl Period {
    /// The period asked for: by default the calendar month (UTC) of `now`;
    /// with only `from`, to the start of the next month; with only `to`,
    /// from the start of the month before it.
    pub fn parse(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, AppError> {
        let out_of_range = || FieldError::new("from", "the period is outside the years 1 to 9999");
        let (from, to) = match (from, to) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => {
                let start = month_start(from.date_naive()).ok_or_else(out_of_range)?;
                (
                    from,
                    start
                        .checked_add_months(Months::new(1))
                        .ok_or_else(out_of_range)?,
                )
            }
            (None, Some(to)) => {
                let last = to - chrono::TimeDelta::microseconds(1);
                (month_start(last.date_naive()).ok_or_else(out_of_range)?, to)
            }
            (None, None) => {
                let start = month_start(now.date_naive()).ok_or_else(out_of_range)?;
                (
                    start,
                    start
                        .checked_add_months(Months::new(1))
                        .ok_or_else(out_of_range)?,
                )
            }
        };
        if from >= to {
            return Err(FieldError::new("to", "must be after from").into());
        }
        Ok(Self { from, to })
    }
}

/// One page of the statement, and the seq to continue from.
pub async fn statement(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    customer_id: Uuid,
    period: Period,
    page: Page<i64>,
) -> Result<(Statement, Option<i64>), AppError> {
    let (summary, rows) = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move {
                if !customers::exists(tx, customer_id).await? {
                    return Err(Refusal::not_found("customer", customer_id).into());
                }
                let summary =
                    statements::summarize(tx, customer_id, period.from, period.to).await?;
                let after = page.after.unwrap_or(0).max(summary.first_after);
                let rows = statements::entries(
                    tx,
                    customer_id,
                    after,
                    summary.last_seq,
                    page.fetch_limit(),
                )
                .await?;
                Ok((summary, rows))
            })
        })
        .await?;
    let (entries, next) = page.finish(rows, |entry| entry.seq);
    let Summary {
        opening_balance,
        closing_balance,
        totals,
        aging,
        ..
    } = summary;
    Ok((
        Statement {
            customer_id,
            from: period.from,
            to: period.to,
            opening_balance,
            closing_balance,
            totals,
            aging,
            entries,
        },
        next,
    ))
}

/// Entries read per chunk of a CSV export.
const CHUNK: i64 = 1_000;

/// Every entry of a period, read a chunk at a time, each chunk in a short
/// transaction of its own: the export holds no database connection between
/// chunks (a slow reader pins nothing), and the period's range of the chain
/// was fixed when it began, so later entries never slip in.
pub struct Export {
    app: Arc<App>,
    tenant: Tenant,
    customer_id: Uuid,
    after: i64,
    last_seq: i64,
    budget: std::time::Duration,
}

/// Starts an export of the period's entries; `budget` bounds each chunk's
/// read (the whole export may take longer).
pub async fn export(
    app: &Arc<App>,
    tenant: &Tenant,
    deadline: Deadline,
    customer_id: Uuid,
    period: Period,
    budget: std::time::Duration,
) -> Result<Export, AppError> {
    let summary = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move {
                if !customers::exists(tx, customer_id).await? {
                    return Err(Refusal::not_found("customer", customer_id).into());
                }
                Ok(statements::summarize(tx, customer_id, period.from, period.to).await?)
            })
        })
        .await?;
    Ok(Export {
        app: app.clone(),
        tenant: *tenant,
        customer_id,
        after: summary.first_after,
        last_seq: summary.last_seq,
        budget,
    })
}

impl Export {
    /// The next chunk of entries, or `None` once all were read.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<LedgerEntry>>, AppError> {
        if self.after >= self.last_seq {
            return Ok(None);
        }
        let (customer_id, after, last_seq) = (self.customer_id, self.after, self.last_seq);
        let rows = self
            .app
            .read(&self.tenant, Deadline::after(self.budget), move |tx| {
                Box::pin(async move {
                    Ok(statements::entries(tx, customer_id, after, last_seq, CHUNK).await?)
                })
            })
            .await?;
        match rows.last() {
            Some(last) => self.after = last.seq,
            // The range held entries when it was fixed, and history is never
            // deleted: nothing more to read.
            None => self.after = self.last_seq,
        }
        Ok(Some(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .expect("a valid time")
    }

    #[test]
    fn the_default_period_is_the_calendar_month_in_utc() {
        let period = Period::parse(None, None, at("2026-12-02T14:00:00Z")).expect("valid");
        assert_eq!(period.from, at("2026-12-01T00:00:00Z"));
        assert_eq!(period.to, at("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn one_end_given_makes_the_other_a_month_boundary() {
        let now = at("2026-12-02T14:00:00Z");
        let from = Period::parse(Some(at("2026-02-15T00:00:00Z")), None, now).expect("valid");
        assert_eq!(from.to, at("2026-03-01T00:00:00Z"));
        let to = Period::parse(None, Some(at("2026-03-01T00:00:00Z")), now).expect("valid");
        assert_eq!(to.from, at("2026-02-01T00:00:00Z"));
    }

    #[test]
    fn an_empty_or_reversed_period_is_invalid() {
        let now = at("2026-12-02T14:00:00Z");
        let t = at("2026-05-01T00:00:00Z");
        assert!(Period::parse(Some(t), Some(t), now).is_err());
        assert!(Period::parse(Some(t), Some(at("2026-04-01T00:00:00Z")), now).is_err());
    }
}
