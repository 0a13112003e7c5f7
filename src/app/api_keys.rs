//! More API keys for a business, listing them, revoking one.

use uuid::Uuid;

use crate::db::api_keys;
use crate::db::page::{CreatedKey, Listed, Page};
use crate::domain::Refusal;
use crate::domain::api_key::ApiKey;
use crate::domain::records::ApiKeyInfo;

use super::{App, AppError, Deadline, Tenant};

/// A key just issued: its record and its plain text, shown only now.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub info: ApiKeyInfo,
    pub key: String,
}

pub async fn create(app: &App, tenant: &Tenant, deadline: Deadline) -> Result<IssuedKey, AppError> {
    let key = ApiKey::generate()
        .map_err(|error| AppError::Internal(format!("random source: {error}")))?;
    let (key_id, secret_sha256) = (key.id, key.secret_sha256());
    let info = app
        .write(tenant, deadline, move |tx| {
            Box::pin(async move { Ok(api_keys::create(tx, key_id, &secret_sha256).await?) })
        })
        .await?;
    Ok(IssuedKey {
        info,
        key: key.reveal(),
    })
}

pub async fn list(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    page: Page<CreatedKey>,
) -> Result<Listed<ApiKeyInfo, CreatedKey>, AppError> {
    let rows = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move { Ok(api_keys::list(tx, &page).await?) })
        })
        .await?;
    let (rows, next) = page.finish(rows, api_keys::key);
    Ok(Listed { rows, next })
}

/// Revocation takes effect at once, on every server instance: each tenant
/// transaction checks that its key is live when it begins.
pub async fn revoke(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    key_id: Uuid,
) -> Result<(), AppError> {
    let revoked = app
        .write(tenant, deadline, move |tx| {
            Box::pin(async move { Ok(api_keys::revoke(tx, key_id).await?) })
        })
        .await?;
    // Other instances find out when the key's next transaction begins; this
    // one also stops authenticating it from its cache, so the key's next
    // request here is refused up front like any invalid key.
    app.forget_api_key(key_id);
    if revoked {
        Ok(())
    } else {
        Err(Refusal::not_found("API key", key_id).into())
    }
}
