//! The database: a pool, tenant-scoped transactions, the migrator, and one
//! module per use case with its SQL.
//!
//! Every tenant query runs inside a [`TenantTx`] from [`Db::begin`], which begins a
//! transaction, switches to role `ontab_app` and sets the tenant with
//! `set_config(..., true)`; row level security does the rest. Both settings
//! are transaction-local, so a pooled connection (or a PgBouncer server
//! connection in transaction mode) never carries a tenant into its next use.

mod error;
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

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;
use tokio_postgres::types::Type;
use uuid::Uuid;

pub use error::{DbError, Retryable, describe as describe_pg};
pub use tx::{Param, TenantTx};

use crate::config::StatementMode;

/// The connection pool and how statements are sent.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    statements: StatementMode,
    /// Milliseconds, as PostgreSQL's statement_timeout setting takes them;
    /// "0" means none.
    statement_timeout: String,
}

impl Db {
    /// A bounded pool; a request that waits longer than `wait` for a
    /// connection gets `DbError::Unavailable` instead of hanging.
    pub fn connect(
        pg_config: tokio_postgres::Config,
        size: usize,
        wait: Duration,
        statements: StatementMode,
    ) -> Result<Self, DbError> {
        let manager = Manager::from_config(
            pg_config,
            NoTls,
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

    /// Opens a transaction of tenant `business_id`: role `ontab_app`, row
    /// level security on that business only.
    pub async fn begin(&self, business_id: Uuid) -> Result<TenantTx, DbError> {
        TenantTx::begin(
            self.client().await?,
            business_id,
            self.statements,
            &self.statement_timeout,
        )
        .await
    }

    /// The business and secret hash of a live API key, looked up across
    /// tenants by the one function allowed to.
    pub async fn api_key(&self, key_id: Uuid) -> Result<Option<(Uuid, Vec<u8>)>, DbError> {
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
        Ok(row.map(|row| (row.get(0), row.get(1))))
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

/// Parses a URL or key=value connection string.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, DbError> {
    url.parse()
        .map_err(|error| DbError::Config(format!("invalid database URL: {error}")))
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
