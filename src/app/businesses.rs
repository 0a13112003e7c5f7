//! Creating a business (the operator's work): the tenant and its first API
//! key, in one transaction acting as the new tenant.

use uuid::Uuid;

use crate::db::{api_keys, businesses};
use crate::domain::api_key::ApiKey;
use crate::domain::records::Business;
use crate::domain::{Currency, Name, Validator};

use super::{App, AppError};

/// A business as asked for, before validation.
#[derive(Debug, Clone)]
pub struct NewBusiness {
    pub name: String,
    /// ISO 4217; `USD` when absent.
    pub currency: Option<String>,
}

/// The new business and its first key, whose plain text is shown only now.
#[derive(Debug, Clone)]
pub struct CreatedBusiness {
    pub business: Business,
    pub api_key_id: Uuid,
    pub api_key: String,
}

/// Creates the business and its first key. Callers have checked that the
/// operator asks (the admin token, or the command line).
pub async fn create(app: &App, request: NewBusiness) -> Result<CreatedBusiness, AppError> {
    let mut check = Validator::default();
    let name = check.check(Name::parse("name", &request.name));
    let currency = check.check_optional(request.currency, |raw| Currency::parse("currency", &raw));
    let (name, currency) = check.finish(|| Some((name?, currency?.unwrap_or_default())))?;
    let key = ApiKey::generate()
        .map_err(|error| AppError::Internal(format!("random source: {error}")))?;
    let business_id = Uuid::now_v7();
    // No API key acts yet: the operator's transaction checks none.
    let (tx, _) = app.db.begin(business_id, &[]).await?;
    let business = businesses::create(&tx, &name, &currency).await?;
    api_keys::create(&tx, key.id, &key.secret_sha256()).await?;
    tx.commit().await?;
    Ok(CreatedBusiness {
        business,
        api_key_id: key.id,
        api_key: key.reveal(),
    })
}
