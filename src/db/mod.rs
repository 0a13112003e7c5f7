//! The database: a pool, tenant-scoped transactions, the migrator, and one
//! module per use case with its SQL.
//!
//! Every tenant query runs inside a [`TenantTx`] from [`Db::begin`], which begins a
//! transaction, switches to role `ontab_app` and sets the tenant with
//! `set_config(..., true)`; row level security does the rest. Both settings
//! are transaction-local, so a pooled connection (or a PgBouncer server
//! connection in transaction mode) never carries a tenant into its next use.
//! The same statement checks that the API key acting is still live, so
//! authentication itself may be served from a cache ([`key_cache`]).

mod error;
mod key_cache;
mod tx;

pub mod api_keys;
pub mod businesses;
pub mod customers;
pub mod idempotency;
pub mod ledger;
pub mod migrate;
pub mod orders;
pub mod page;
pub mod payment;
pub mod products;
pub mod purchase;
pub mod reports;
pub mod returns;
pub mod stock;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::types::Type;
use uuid::Uuid;

pub use error::{DbError, Retryable, describe as describe_pg};
pub use key_cache::KeyRecord;
pub use tx::{Param, TenantTx};

use crate::config::StatementMode;
use key_cache::KeyCache;

/// API keys remembered per process. A few thousand entries of 64 bytes
/// (under half a megabyte) hold every key in use for any realistic number
/// of businesses on one instance; past that, lookups simply come back.
const KEY_CACHE_CAPACITY: usize = 4096;

/// The connection pool, how statements are sent, and the API keys already
/// looked up (shared by every clone, e.g. the purchase batcher's).
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    statements: StatementMode,
    /// Milliseconds, as PostgreSQL's statement_timeout setting takes them;
    /// "0" means none.
    statement_timeout: String,
    keys: Arc<KeyCache>,
}

impl Db {
    /// A bounded pool; a request that waits longer than `wait` for a
    /// connection gets `DbError::Unavailable` instead of hanging.
    pub fn connect(
        options: tls::ConnectOptions,
        size: usize,
        wait: Duration,
        statements: StatementMode,
    ) -> Result<Self, DbError> {
        let manager = Manager::from_config(
            options.config,
            options.tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(wait),
                create: Some(wait),
                recycle: Some(wait),
            })
            .build()
            .map_err(|error| DbError::Config(error.to_string()))?;
        Ok(Self {
            pool,
            statements,
            statement_timeout: "0".to_owned(),
            keys: Arc::new(KeyCache::new(KEY_CACHE_CAPACITY)),
        })
    }

    /// Bounds every statement of a tenant transaction, lock waits included,
    /// so a request that gave up does not leave its backend waiting on a
    /// row lock behind it.
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.as_millis().to_string();
        self
    }

    pub fn statements(&self) -> StatementMode {
        self.statements
    }

    /// Pool size and how many requests wait for a connection right now.
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    pub async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        self.pool.get().await.map_err(DbError::from)
    }

    /// Opens a transaction of tenant `business_id` acting through its API
    /// key `key_id`: role `ontab_app`, row level security on that business
    /// only. A key revoked since it was authenticated fails with
    /// `DbError::KeyRevoked`, and is forgotten by the key cache.
    pub async fn begin(&self, business_id: Uuid, key_id: Uuid) -> Result<TenantTx, DbError> {
        let (tx, revoked) = self.begin_for_keys(business_id, &[key_id]).await?;
        if revoked.is_empty() {
            Ok(tx)
        } else {
            Err(DbError::KeyRevoked)
        }
    }

    /// `begin` for work of several API keys of one business (a purchase
    /// batch): answers the transaction and which of `key_ids` are no longer
    /// live keys of the business, forgotten by the key cache. Work of those
    /// keys must not run.
    pub async fn begin_for_keys(
        &self,
        business_id: Uuid,
        key_ids: &[Uuid],
    ) -> Result<(TenantTx, Vec<Uuid>), DbError> {
        let (tx, live) = TenantTx::begin(
            self.client().await?,
            business_id,
            key_ids,
            self.statements,
            &self.statement_timeout,
        )
        .await?;
        let revoked: Vec<Uuid> = key_ids
            .iter()
            .copied()
            .filter(|key_id| !live.contains(key_id))
            .collect();
        for key_id in &revoked {
            self.keys.forget(*key_id);
        }
        Ok((tx, revoked))
    }

    /// A tenant transaction on the operator's behalf, with no API key to
    /// check: creating a business (admin endpoint, `ontab businesses
    /// create`), whose first key does not exist yet.
    pub async fn begin_as_operator(&self, business_id: Uuid) -> Result<TenantTx, DbError> {
        let (tx, _) = self.begin_for_keys(business_id, &[]).await?;
        Ok(tx)
    }

    /// The business and secret hash of a live API key: from this process's
    /// cache, else looked up across tenants by the one function allowed to
    /// (and then cached). A key revoked since it was cached is still found
    /// here; `begin` refuses its work.
    pub async fn api_key(&self, key_id: Uuid) -> Result<Option<KeyRecord>, DbError> {
        if let Some(record) = self.keys.get(key_id) {
            return Ok(Some(record));
        }
        let client = self.client().await?;
        let sql = "SELECT business_id, secret_sha256 FROM ontab_api_key($1)";
        let row = match self.statements {
            StatementMode::Prepared => {
                let statement = client.prepare_typed_cached(sql, &[Type::UUID]).await?;
                client.query_opt(&statement, &[&key_id]).await?
            }
            StatementMode::Unnamed => client
                .query_typed(sql, &[(&key_id, Type::UUID)])
                .await?
                .into_iter()
                .next(),
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let decode_error = || DbError::Decode(format!("lookup of API key {key_id}"));
        let business_id = row.try_get("business_id").map_err(|_| decode_error())?;
        let secret_sha256: Vec<u8> = row.try_get("secret_sha256").map_err(|_| decode_error())?;
        let record = KeyRecord {
            business_id,
            // 32 bytes by a CHECK on api_keys.
            secret_sha256: secret_sha256.try_into().map_err(|_| decode_error())?,
        };
        self.keys.insert(key_id, record);
        Ok(Some(record))
    }

    /// Forgets a key this process cached, e.g. once it revoked it.
    pub fn forget_api_key(&self, key_id: Uuid) {
        self.keys.forget(key_id);
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Deletes idempotency records older than `age` (never younger than 24h).
    pub async fn expire_idempotency_keys(&self, age: Duration) -> Result<i64, DbError> {
        let client = self.client().await?;
        let seconds = format!("{} seconds", age.as_secs());
        let rows = client
            .query_typed(
                "SELECT ontab_expire_idempotency_keys($1::text::interval)",
                &[(&seconds, Type::TEXT)],
            )
            .await?;
        Ok(rows.first().map(|row| row.get(0)).unwrap_or(0))
    }
}

/// Parses a URL or key=value connection string, TLS settings included.
pub fn parse_url(url: &str) -> Result<tls::ConnectOptions, DbError> {
    Ok(tls::parse_database_url(url)?)
}

/// Splits a use-case function's jsonb answer into the created record (under
/// `key`) or the refusal it returned instead.
fn decode_outcome<T: serde::de::DeserializeOwned>(
    answer: serde_json::Value,
    key: &str,
) -> Result<Result<T, crate::domain::Refusal>, DbError> {
    let decode_error = |error: serde_json::Error| DbError::Decode(format!("{key}: {error}"));
    if answer.get("error").is_some() {
        return serde_json::from_value(answer)
            .map(Err)
            .map_err(decode_error);
    }
    match answer.get(key) {
        Some(record) => T::deserialize(record).map(Ok).map_err(decode_error),
        None => Err(DbError::Decode(format!(
            "answer has neither `{key}` nor `error`"
        ))),
    }
}
