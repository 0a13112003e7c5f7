//! Businesses: creating one (the operator's work: the tenant and its first
//! API key, in one transaction acting as the new tenant), and a tenant
//! reading or changing its own.

use uuid::Uuid;

use crate::db::{api_keys, businesses};
use crate::domain::api_key::ApiKey;
use crate::domain::records::Business;
use crate::domain::{Currency, Name, PaymentTerms, Validator};

use super::customers::not_null;
use super::{Actor, App, AppError, Deadline, Tenant};

/// A business as asked for, before validation.
#[derive(Debug, Clone)]
pub struct NewBusiness {
    pub name: String,
    /// ISO 4217; `USD` when absent.
    pub currency: Option<String>,
    /// The terms new customers get; 30 days when absent.
    pub payment_terms_days: Option<i128>,
}

/// The new business and its first key, whose plain text is shown only now.
#[derive(Debug, Clone)]
pub struct CreatedBusiness {
    pub business: Business,
    pub api_key_id: Uuid,
    pub api_key: String,
}

/// Creates the business and its first key. Callers have checked that the
/// operator asks (`actor`: the admin token, or the command line).
pub async fn create(
    app: &App,
    actor: Actor,
    request: NewBusiness,
) -> Result<CreatedBusiness, AppError> {
    let mut check = Validator::default();
    let name = check.check(Name::parse("name", &request.name));
    let currency = check.check_optional(request.currency, |raw| Currency::parse("currency", &raw));
    let terms = check.check_optional(request.payment_terms_days, |raw| {
        PaymentTerms::parse("payment_terms_days", raw)
    });
    let (name, currency, terms) = check.finish(|| {
        Some((
            name?,
            currency?.unwrap_or_default(),
            terms?.unwrap_or(PaymentTerms::DEFAULT),
        ))
    })?;
    let key = ApiKey::generate()
        .map_err(|error| AppError::Internal(format!("random source: {error}")))?;
    let business_id = Uuid::now_v7();
    // No API key acts yet: the operator's transaction checks none.
    let (tx, _) = app.db.begin(business_id, &[], &actor.recorded()).await?;
    let business = businesses::create(&tx, &name, &currency, terms).await?;
    api_keys::create(&tx, key.id, &key.secret_sha256()).await?;
    tx.commit().await?;
    Ok(CreatedBusiness {
        business,
        api_key_id: key.id,
        api_key: key.reveal(),
    })
}

/// The caller's own business.
pub async fn get(app: &App, tenant: &Tenant, deadline: Deadline) -> Result<Business, AppError> {
    app.read(tenant, deadline, move |tx| {
        Box::pin(async move { Ok(businesses::get(tx).await?) })
    })
    .await
}

/// Changes to the caller's business: absent fields stay; null is refused.
#[derive(Debug, Clone, Default)]
pub struct BusinessChanges {
    pub name: Option<Option<String>>,
    pub payment_terms_days: Option<Option<i128>>,
}

/// Renames the business or changes the terms its new customers get
/// (existing customers keep theirs).
pub async fn update(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    changes: BusinessChanges,
) -> Result<Business, AppError> {
    let mut check = Validator::default();
    let name = check.check_optional(changes.name, |raw| {
        not_null("name", raw).and_then(|raw| Name::parse("name", &raw))
    });
    let terms = check.check_optional(changes.payment_terms_days, |raw| {
        not_null("payment_terms_days", raw)
            .and_then(|raw| PaymentTerms::parse("payment_terms_days", raw))
    });
    let (name, terms) = check.finish(|| Some((name?, terms?)))?;
    app.write(tenant, deadline, move |tx| {
        let name = name.clone();
        Box::pin(async move { Ok(businesses::update(tx, name.as_ref(), terms).await?) })
    })
    .await
}
