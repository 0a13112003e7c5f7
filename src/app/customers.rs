//! Customers: open an account with a credit limit, read it, list them,
//! rename or change the limit, and read the ledger.

use uuid::Uuid;

use crate::db::page::{CreatedKey, Listed, Page};
use crate::db::{customers, ledger};
use crate::domain::records::{Customer, LedgerEntry};
use crate::domain::{FieldError, Name, NonNegative, Refusal, Validator};

use super::{App, AppError, Deadline, Tenant};

/// A customer as asked for, before validation (amounts as sent, possibly
/// beyond i64).
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub name: String,
    pub credit_limit: i128,
}

/// Changes to a customer: absent fields stay; `Some(None)` is an explicit
/// null, which no field of a customer accepts.
#[derive(Debug, Clone, Default)]
pub struct CustomerChanges {
    pub name: Option<Option<String>>,
    pub credit_limit: Option<Option<i128>>,
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
    let (name, limit) = check.finish(|| Some((name?, limit?)))?;
    app.write(tenant, deadline, move |tx| {
        let name = name.clone();
        Box::pin(async move { Ok(customers::create(tx, &name, limit).await?) })
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
            Ok(customers::get(tx, id)
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
            Box::pin(async move { Ok(customers::list(tx, &page).await?) })
        })
        .await?;
    let (rows, next) = page.finish(rows, customers::key);
    Ok(Listed { rows, next })
}

/// Valid changes to a customer.
#[derive(Debug, Clone)]
pub struct CustomerUpdate {
    name: Option<Name>,
    credit_limit: Option<NonNegative>,
}

impl CustomerUpdate {
    pub fn parse(changes: CustomerChanges) -> Result<Self, AppError> {
        let mut check = Validator::default();
        let name = check.check_optional(changes.name, |raw| {
            not_null("name", raw).and_then(|raw| Name::parse("name", &raw))
        });
        let credit_limit = check.check_optional(changes.credit_limit, |raw| {
            not_null("credit_limit", raw).and_then(|raw| NonNegative::parse("credit_limit", raw))
        });
        Ok(check.finish(|| {
            Some(Self {
                name: name?,
                credit_limit: credit_limit?,
            })
        })?)
    }
}

/// Renames and/or changes the limit. A limit may go below the balance: it
/// only blocks new purchases.
pub async fn update(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
    update: CustomerUpdate,
) -> Result<Customer, AppError> {
    let CustomerUpdate {
        name,
        credit_limit: limit,
    } = update;
    app.write(tenant, deadline, move |tx| {
        let name = name.clone();
        Box::pin(async move {
            Ok(customers::update(tx, id, name.as_ref(), limit)
                .await?
                .ok_or_else(|| Refusal::not_found("customer", id))?)
        })
    })
    .await
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
                if !customers::exists(tx, customer_id).await? {
                    return Err(Refusal::not_found("customer", customer_id).into());
                }
                Ok(ledger::list(tx, customer_id, &page).await?)
            })
        })
        .await?;
    let (rows, next) = page.finish(rows, |entry| entry.seq);
    Ok(Listed { rows, next })
}

/// A field a PATCH may leave out but not set to null.
pub(crate) fn not_null<T>(field: &str, raw: Option<T>) -> Result<T, FieldError> {
    raw.ok_or_else(|| FieldError::new(field, "must not be null (leave it out to keep it)"))
}
