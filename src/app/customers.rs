//! Customers: open an account with a credit limit, status and payment
//! terms, read it, list them, change it, and read its ledger and history.

use uuid::Uuid;

use crate::db::customers::{self as stored, Changes};
use crate::db::ledger;
use crate::db::page::{CreatedKey, Listed, Page};
use crate::domain::records::{Customer, CustomerChange, LedgerEntry};
use crate::domain::{
    AccountStatus, FieldError, Name, NonNegative, PaymentTerms, Refusal, Validator,
};

use super::{App, AppError, Deadline, Tenant};

/// A customer as asked for, before validation (amounts as sent, possibly
/// beyond i64).
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub name: String,
    pub credit_limit: i128,
    /// `active` when absent.
    pub status: Option<String>,
    /// The business's terms when absent.
    pub payment_terms_days: Option<i128>,
}

/// Changes to a customer: absent fields stay; `Some(None)` is an explicit
/// null, which no field of a customer accepts.
#[derive(Debug, Clone, Default)]
pub struct CustomerChanges {
    pub name: Option<Option<String>>,
    pub credit_limit: Option<Option<i128>>,
    pub status: Option<Option<String>>,
    pub payment_terms_days: Option<Option<i128>>,
}

pub async fn create(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    request: NewCustomer,
) -> Result<Customer, AppError> {
    let mut check = Validator::default();
    let name = check.check(Name::parse("name", &request.name));
    let limit = check.check(NonNegative::parse("credit_limit", request.credit_limit));
    let status = check.check_optional(request.status, |raw| AccountStatus::parse("status", &raw));
    let terms = check.check_optional(request.payment_terms_days, |raw| {
        PaymentTerms::parse("payment_terms_days", raw)
    });
    let (name, credit_limit, status, payment_terms) = check.finish(|| {
        Some((
            name?,
            limit?,
            status?.unwrap_or(AccountStatus::Active),
            terms?,
        ))
    })?;
    app.write(tenant, deadline, move |tx| {
        let name = name.clone();
        Box::pin(async move {
            let new = stored::NewCustomer {
                name: &name,
                credit_limit,
                status,
                payment_terms,
            };
            Ok(stored::create(tx, &new).await?)
        })
    })
    .await
}

pub async fn get(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
) -> Result<Customer, AppError> {
    app.read(tenant, deadline, move |tx| {
        Box::pin(async move {
            Ok(stored::get(tx, id)
                .await?
                .ok_or_else(|| Refusal::not_found("customer", id))?)
        })
    })
    .await
}

pub async fn list(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    page: Page<CreatedKey>,
) -> Result<Listed<Customer, CreatedKey>, AppError> {
    let rows = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move { Ok(stored::list(tx, &page).await?) })
        })
        .await?;
    let (rows, next) = page.finish(rows, stored::key);
    Ok(Listed { rows, next })
}

/// Valid changes to a customer.
#[derive(Debug, Clone)]
pub struct CustomerUpdate(Changes);

impl CustomerUpdate {
    pub fn parse(changes: CustomerChanges) -> Result<Self, AppError> {
        let mut check = Validator::default();
        let name = check.check_optional(changes.name, |raw| {
            not_null("name", raw).and_then(|raw| Name::parse("name", &raw))
        });
        let credit_limit = check.check_optional(changes.credit_limit, |raw| {
            not_null("credit_limit", raw).and_then(|raw| NonNegative::parse("credit_limit", raw))
        });
        let status = check.check_optional(changes.status, |raw| {
            not_null("status", raw).and_then(|raw| AccountStatus::parse("status", &raw))
        });
        let payment_terms = check.check_optional(changes.payment_terms_days, |raw| {
            not_null("payment_terms_days", raw)
                .and_then(|raw| PaymentTerms::parse("payment_terms_days", raw))
        });
        Ok(Self(check.finish(|| {
            Some(Changes {
                name: name?,
                credit_limit: credit_limit?,
                status: status?,
                payment_terms: payment_terms?,
            })
        })?))
    }
}

/// Changes name, limit, status and/or terms. A limit may go below the
/// balance: it only blocks new purchases. A customer is put on hold or
/// taken off it at any time, closed only from a zero balance
/// (`balance_outstanding`), and once closed never reopened
/// (`customer_closed`). Terms changed later never move an existing due date.
pub async fn update(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
    update: CustomerUpdate,
) -> Result<Customer, AppError> {
    let CustomerUpdate(changes) = update;
    let updated = app
        .write(tenant, deadline, move |tx| {
            let changes = changes.clone();
            Box::pin(async move { Ok(stored::update(tx, id, &changes).await??) })
        })
        .await?;
    let (was, now) = (updated.status_was, updated.customer.status);
    if was != now {
        metrics::counter!(
            "ontab_customer_status_changes_total",
            "from" => was.as_str(),
            "to" => now.as_str()
        )
        .increment(1);
    }
    Ok(updated.customer)
}

/// The customer's ledger, oldest first, from after `page.after` (a seq).
pub async fn ledger(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    customer_id: Uuid,
    page: Page<i64>,
) -> Result<Listed<LedgerEntry, i64>, AppError> {
    let rows = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move {
                if !stored::exists(tx, customer_id).await? {
                    return Err(Refusal::not_found("customer", customer_id).into());
                }
                Ok(ledger::list(tx, customer_id, &page).await?)
            })
        })
        .await?;
    let (rows, next) = page.finish(rows, |entry| entry.seq);
    Ok(Listed { rows, next })
}

/// Every change of the customer's limit, status and terms, its creation
/// first: who, when, old → new.
pub async fn history(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    customer_id: Uuid,
    page: Page<i64>,
) -> Result<Listed<CustomerChange, i64>, AppError> {
    let rows = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move {
                if !stored::exists(tx, customer_id).await? {
                    return Err(Refusal::not_found("customer", customer_id).into());
                }
                Ok(stored::history(tx, customer_id, &page).await?)
            })
        })
        .await?;
    let (rows, next) = page.finish(rows, |change| change.id);
    Ok(Listed { rows, next })
}

/// A field a PATCH may leave out but not set to null.
pub(crate) fn not_null<T>(field: &str, raw: Option<T>) -> Result<T, FieldError> {
    raw.ok_or_else(|| FieldError::new(field, "must not be null (leave it out to keep it)"))
}
