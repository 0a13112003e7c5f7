//! Who is calling: a business, by one of its API keys, or the operator, by
//! the admin token. The tenant comes from the key and nothing else.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::db::api_keys;
use crate::domain::api_key::ApiKey;

use super::{App, AppError, Deadline, INVALID_API_KEY, Tenant};

/// SHA-256 of a token, as the admin token is kept in memory.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl App {
    /// The business an API key acts for. The key's record usually comes
    /// from this process's cache, so this alone does not prove the key is
    /// still live: the transaction every tenant request runs in checks that
    /// when it begins.
    pub async fn authenticate(&self, token: &str, deadline: Deadline) -> Result<Tenant, AppError> {
        let key = ApiKey::parse(token).ok_or(AppError::Unauthorized(INVALID_API_KEY))?;
        let record = match self.keys.get(&key.id) {
            Some(record) => record,
            None => {
                let looked_up =
                    tokio::time::timeout_at(deadline.instant(), api_keys::lookup(&self.db, key.id))
                        .await
                        .map_err(|_| super::transaction::deadline_passed())??;
                let record = looked_up.ok_or(AppError::Unauthorized(INVALID_API_KEY))?;
                self.keys.insert(key.id, record);
                record
            }
        };
        // Constant-time, so response timing says nothing about how much of a
        // guessed secret was right.
        if !bool::from(key.secret_sha256().ct_eq(&record.secret_sha256)) {
            return Err(AppError::Unauthorized(INVALID_API_KEY));
        }
        Ok(Tenant {
            business_id: record.business_id,
            key_id: key.id,
        })
    }

    /// Whether `token` is the operator's admin token.
    pub fn authenticate_admin(&self, token: Option<&str>) -> Result<(), AppError> {
        let Some(expected) = self.admin_token_sha256 else {
            return Err(AppError::Unauthorized(
                "the admin endpoint is disabled: set ONTAB_ADMIN_TOKEN",
            ));
        };
        let token = token.ok_or(AppError::Unauthorized(
            "missing Authorization: Bearer <admin token>",
        ))?;
        if bool::from(token_hash(token).ct_eq(&expected)) {
            Ok(())
        } else {
            Err(AppError::Unauthorized("invalid admin token"))
        }
    }

    /// Forgets a key this process cached, e.g. once it revoked it.
    pub(crate) fn forget_api_key(&self, key_id: uuid::Uuid) {
        self.keys.forget(&key_id);
    }
}
