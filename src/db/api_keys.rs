//! API keys of a business. Only the SHA-256 of each secret is stored.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::{DbError, TenantTx};

/// A key as listed: never the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyInfo {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            created_at: row.get("created_at"),
            revoked_at: row.get("revoked_at"),
        }
    }

    pub fn key(&self) -> CreatedKey {
        CreatedKey {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// Stores a new key's hash for the current business.
pub async fn create(tx: &TenantTx, id: Uuid, secret_sha256: &[u8]) -> Result<ApiKeyInfo, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_one(
            "INSERT INTO api_keys (business_id, id, secret_sha256) VALUES ($1, $2, $3)
             RETURNING id, created_at, revoked_at",
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&secret_sha256, Type::BYTEA),
            ],
        )
        .await?;
    Ok(ApiKeyInfo::from_row(&row))
}

pub async fn list(tx: &TenantTx, page: &Page<CreatedKey>) -> Result<Vec<ApiKeyInfo>, DbError> {
    let business = tx.business_id();
    let (after_at, after_id) = match page.after {
        Some(key) => (Some(key.created_at), Some(key.id)),
        None => (None, None),
    };
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            "SELECT id, created_at, revoked_at FROM api_keys
              WHERE business_id = $1
                AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
              ORDER BY created_at, id
              LIMIT $4",
            &[
                (&business, Type::UUID),
                (&after_at, Type::TIMESTAMPTZ),
                (&after_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    Ok(rows.iter().map(ApiKeyInfo::from_row).collect())
}

/// Revokes a key; `false` when the business has no such key. Revoking twice
/// keeps the first revocation time.
pub async fn revoke(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_opt(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
              WHERE business_id = $1 AND id = $2
             RETURNING id",
            &[(&business, Type::UUID), (&id, Type::UUID)],
        )
        .await?;
    Ok(row.is_some())
}
