//! API keys of a business. Only the SHA-256 of each secret is stored.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::sql::{Column, Statement, statement};
use super::{Db, DbError, TenantTx, column};
use crate::domain::records::ApiKeyInfo;

/// What authentication needs to know about a live key.
#[derive(Debug, Clone, Copy)]
pub struct KeyRecord {
    pub business_id: Uuid,
    pub secret_sha256: [u8; 32],
}

/// The columns `info` reads.
const INFO: &[Column] = &[
    Column::named::<Uuid>("id"),
    Column::named::<DateTime<Utc>>("created_at"),
    Column::named::<Option<DateTime<Utc>>>("revoked_at"),
];

fn info(row: &Row) -> Result<ApiKeyInfo, DbError> {
    Ok(ApiKeyInfo {
        id: column(row, "id")?,
        created_at: column(row, "created_at")?,
        revoked_at: column(row, "revoked_at")?,
    })
}

/// The key's position in the list.
pub fn key(info: &ApiKeyInfo) -> CreatedKey {
    CreatedKey {
        created_at: info.created_at,
        id: info.id,
    }
}

// Authentication runs before a tenant is known: the one function allowed
// to look across tenants (SECURITY DEFINER, migrations) answers a live
// key's business and secret hash.
const LOOKUP: &str = "SELECT business_id, secret_sha256 FROM ontab_api_key($1)";

/// The business and secret hash of a live key, if there is one.
pub async fn lookup(db: &Db, key_id: Uuid) -> Result<Option<KeyRecord>, DbError> {
    let rows = db
        .query_untenanted(LOOKUP, &[(&key_id, Type::UUID)])
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let secret: Vec<u8> = column(row, "secret_sha256")?;
    Ok(Some(KeyRecord {
        business_id: column(row, "business_id")?,
        // 32 bytes by a CHECK on api_keys.
        secret_sha256: secret
            .try_into()
            .map_err(|_| DbError::Decode("api key secret hash is not 32 bytes".into()))?,
    }))
}

const CREATE: &str = "INSERT INTO api_keys (business_id, id, secret_sha256) VALUES ($1, $2, $3)
                      RETURNING id, created_at, revoked_at";

/// Stores a new key's hash for the current business.
pub async fn create(tx: &TenantTx, id: Uuid, secret_sha256: &[u8]) -> Result<ApiKeyInfo, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_one(
            CREATE,
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&secret_sha256, Type::BYTEA),
            ],
        )
        .await?;
    info(&row)
}

const LIST: &str = "SELECT id, created_at, revoked_at FROM api_keys
                     WHERE business_id = $1
                       AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
                     ORDER BY created_at, id
                     LIMIT $4";

pub async fn list(tx: &TenantTx, page: &Page<CreatedKey>) -> Result<Vec<ApiKeyInfo>, DbError> {
    let business = tx.business_id();
    let (after_at, after_id) = page.after_parts();
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            LIST,
            &[
                (&business, Type::UUID),
                (&after_at, Type::TIMESTAMPTZ),
                (&after_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(info).collect()
}

// least() skips a NULL, so this is the first revocation time or now; not
// coalesce(), which Citus refuses around now() in a change it routes
// ("non-IMMUTABLE functions are not allowed in CASE or COALESCE").
const REVOKE: &str = "UPDATE api_keys SET revoked_at = least(revoked_at, now())
                       WHERE business_id = $1 AND id = $2
                      RETURNING id";

/// Revokes a key; `false` when the business has no such key. Revoking twice
/// keeps the first revocation time.
pub async fn revoke(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_opt(REVOKE, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?;
    Ok(row.is_some())
}

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        LOOKUP,
        &[Type::UUID],
        &[
            Column::named::<Uuid>("business_id"),
            Column::named::<Vec<u8>>("secret_sha256"),
        ],
    ),
    statement!(CREATE, &[Type::UUID, Type::UUID, Type::BYTEA], INFO),
    statement!(
        LIST,
        &[Type::UUID, Type::TIMESTAMPTZ, Type::UUID, Type::INT8],
        INFO
    ),
    statement!(REVOKE, &[Type::UUID, Type::UUID], &[]),
];
