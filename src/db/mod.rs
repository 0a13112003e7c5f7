//! The database: a pool, tenant-scoped transactions, the migrator, and one
//! module per use case with its SQL.
//!
//! Every tenant query runs inside a [`TenantTx`] from [`Db::begin`], which
//! begins a transaction, switches to role `ontab_app` and sets the tenant
//! with `SET LOCAL` (which Citus forwards to its workers, unlike
//! `set_config`); row level security does the rest. Both
//! settings are transaction-local, so a pooled connection (or a PgBouncer
//! server connection in transaction mode) never carries a tenant into its
//! next use. The same statement reports which of the API keys acting are
//! still live, so authentication itself may be served from a cache.
//!
//! Rows are decoded with `try_get` ([`column`]): a column of an unexpected
//! type is a [`DbError::Decode`], never a panic.
//!
//! Every statement is a `const` beside its use and is listed, with the
//! types it is bound with and the columns it is decoded from, in its
//! module's `STATEMENTS`; [`sql::statements`] gathers them for the test
//! that prepares each against the migrated schema (`tests/api/sql.rs`).

mod error;
mod tx;

pub mod api_keys;
pub mod audit;
pub mod businesses;
pub mod citus;
pub mod customers;
pub mod deliveries;
pub mod events;
pub mod holds;
pub mod idempotency;
pub mod ledger;
pub mod login;
pub mod migrate;
pub mod orders;
pub mod page;
pub mod payment;
pub mod products;
pub mod purchase;
pub mod reports;
pub mod returns;
pub mod sql;
pub mod statements;
pub mod stock;
pub mod tls;
pub mod webhooks;
pub mod write_off;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};
use uuid::Uuid;

pub use error::{DbError, describe as describe_pg};
pub use tx::{Param, TenantTx};

use crate::domain::Refusal;
use sql::{Column, Statement, statement};

/// How SQL statements are sent to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatementMode {
    /// Named statements prepared once per connection and reused: fastest
    /// against PostgreSQL directly.
    #[default]
    Prepared,
    /// Unnamed statements sent with their parameter types in one round trip:
    /// needed behind a transaction-mode pooler that does not track prepared
    /// statements (PgBouncer before 1.21).
    Unnamed,
}

/// How the pool behaves.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Most connections open at once.
    pub size: usize,
    /// How long to wait for a free connection before `DbError::Unavailable`.
    pub wait: Duration,
    pub statements: StatementMode,
    /// Bounds every statement of a tenant transaction, lock waits included,
    /// so a request that gave up does not leave its backend waiting on a row
    /// lock behind it. `None`: no bound.
    pub statement_timeout: Option<Duration>,
}

/// The connection pool and how statements are sent on it.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// How the pool connects, for the connection that LISTENs.
    connect: tls::ConnectOptions,
    statements: StatementMode,
    /// Milliseconds, as PostgreSQL's statement_timeout setting takes them;
    /// "0" means none.
    statement_timeout: String,
}

impl Db {
    /// A bounded pool; a request that waits longer than `options.wait` for a
    /// connection gets `DbError::Unavailable` instead of hanging.
    pub fn connect(connect: tls::ConnectOptions, options: PoolOptions) -> Result<Self, DbError> {
        let manager = Manager::from_config(
            connect.config.clone(),
            connect.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.size)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(options.wait),
                create: Some(options.wait),
                recycle: Some(options.wait),
            })
            .build()
            .map_err(|error| DbError::Config(error.to_string()))?;
        Ok(Self {
            pool,
            connect,
            statements: options.statements,
            statement_timeout: options
                .statement_timeout
                .map_or_else(|| "0".to_owned(), |timeout| timeout.as_millis().to_string()),
        })
    }

    /// How the pool's connections are made.
    pub(crate) fn connect_options(&self) -> &tls::ConnectOptions {
        &self.connect
    }

    /// Pool size and how many requests wait for a connection right now.
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        self.pool.get().await.map_err(DbError::from)
    }

    /// Opens a transaction of tenant `business_id` for work of the API keys
    /// `key_ids` (none for the operator's own work), done by `actor` (an API
    /// key id, or `admin`, `cli`, `system`: recorded in the history the
    /// triggers write): role `ontab_app`, row level security on that
    /// business only. Answers which of `key_ids` are no longer live keys of
    /// the business; their work must not run.
    pub async fn begin(
        &self,
        business_id: Uuid,
        key_ids: &[Uuid],
        actor: &str,
    ) -> Result<(TenantTx, Vec<Uuid>), DbError> {
        let mut attempt = 1;
        let (tx, live) = loop {
            let begun = TenantTx::begin(
                self.client().await?,
                business_id,
                key_ids,
                actor,
                self.statements,
                &self.statement_timeout,
            )
            .await;
            match begun {
                // A pooled connection that died while idle (its backend
                // terminated, a pooler or the network closed it) fails here,
                // before anything that could commit was sent: another
                // connection may well work, and the request need not be a
                // 503. The broken one is not returned to the pool. All of
                // them may have died together (one restart closes them
                // all), and the pool drops only those it has seen close: as
                // many attempts as it holds, then one new connection, which
                // fails at once if none can be made (`client`). The pool's
                // size is read only here, off the path of every BEGIN (it
                // takes the pool's lock).
                Err(DbError::Unavailable(detail)) if attempt <= self.pool.status().max_size => {
                    tracing::debug!(%detail, attempt, "a pooled connection failed at BEGIN; taking another");
                    attempt += 1;
                }
                begun => break begun?,
            }
        };
        let revoked = key_ids
            .iter()
            .copied()
            .filter(|key_id| !live.contains(key_id))
            .collect();
        Ok((tx, revoked))
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbError> {
        let client = self.client().await?;
        client.simple_query(PING).await?;
        Ok(())
    }

    /// Runs one statement outside any tenant (the lookups and sweeps that
    /// SECURITY DEFINER functions allow across tenants), in the configured
    /// statement mode.
    pub(crate) async fn query_untenanted(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, DbError> {
        let client = self.client().await?;
        tx::query_on(&client, self.statements, sql, params).await
    }

    /// Deletes idempotency records older than `age` (never younger than 24h).
    pub async fn expire_idempotency_keys(&self, age: Duration) -> Result<i64, DbError> {
        let seconds = format!("{} seconds", age.as_secs());
        let rows = self
            .query_untenanted(EXPIRE_IDEMPOTENCY_KEYS, &[(&seconds, Type::TEXT)])
            .await?;
        match rows.first() {
            Some(row) => column(row, 0),
            None => Ok(0),
        }
    }
}

const PING: &str = "SELECT 1";
const EXPIRE_IDEMPOTENCY_KEYS: &str = "SELECT ontab_expire_idempotency_keys($1::text::interval)";

const STATEMENTS: &[Statement] = &[
    statement!(PING, &[], &[]),
    statement!(
        EXPIRE_IDEMPOTENCY_KEYS,
        &[Type::TEXT],
        &[Column::at::<i64>(0)]
    ),
];

/// Parses a URL or key=value connection string, TLS settings included.
pub fn parse_url(url: &str) -> Result<tls::ConnectOptions, DbError> {
    Ok(tls::parse_database_url(url)?)
}

/// One column of a row, by name or position, as `T`; a mismatch is a
/// `DbError::Decode` naming the column.
pub fn column<'a, I, T>(row: &'a Row, index: I) -> Result<T, DbError>
where
    I: tokio_postgres::row::RowIndex + std::fmt::Display,
    T: FromSql<'a>,
{
    row.try_get(&index)
        .map_err(|error| DbError::Decode(format!("column {index}: {error}")))
}

/// A json or jsonb value as its text, borrowed from the row: decoded
/// straight into the type wanted, with no `serde_json::Value` between
/// (building and dropping that tree was a tenth of the server's
/// instructions per purchase, bench/results/20261203T2243Z-profile.md).
pub struct JsonText<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if *ty != Type::JSONB {
            return Ok(Self(raw));
        }
        // jsonb's binary form: a version byte, then the text.
        match raw.split_first() {
            Some((1, text)) => Ok(Self(text)),
            _ => Err("unsupported jsonb version".into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::JSONB
    }
}

/// Splits a use-case function's jsonb answer into the created record (under
/// `key`) or the refusal it returned instead.
fn decode_outcome<T: serde::de::DeserializeOwned>(
    answer: JsonText<'_>,
    key: &str,
) -> Result<Result<T, Refusal>, DbError> {
    use serde::de::DeserializeSeed;
    let decode_error = |error: serde_json::Error| DbError::Decode(format!("{key}: {error}"));
    let mut reader = serde_json::Deserializer::from_slice(answer.0);
    let read = Answer::<T> {
        key,
        record: std::marker::PhantomData,
    }
    .deserialize(&mut reader)
    .and_then(|read| reader.end().map(|()| read))
    .map_err(decode_error)?;
    match read {
        Read::Record(record) => Ok(Ok(record)),
        // Refusals are few: read again, whole, as one.
        Read::Refusal => serde_json::from_slice(answer.0)
            .map(Err)
            .map_err(decode_error),
        Read::Neither => Err(DbError::Decode(format!(
            "answer has neither `{key}` nor `error`"
        ))),
    }
}

/// [`decode_outcome`] for an answer already read as a value.
fn decode_value_outcome<T: serde::de::DeserializeOwned>(
    answer: serde_json::Value,
    key: &str,
) -> Result<Result<T, Refusal>, DbError> {
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

/// What an answer object held: the record under the key, or an `error`
/// (which wins, as it did when read as a value), or neither.
enum Read<T> {
    Record(T),
    Refusal,
    Neither,
}

/// Reads an answer object in one pass: the member named `key` as `T`,
/// every other member skipped unread.
struct Answer<'k, T> {
    key: &'k str,
    record: std::marker::PhantomData<T>,
}

impl<'de, T: serde::de::DeserializeOwned> serde::de::DeserializeSeed<'de> for Answer<'_, T> {
    type Value = Read<T>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Read<T>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: serde::de::DeserializeOwned> serde::de::Visitor<'de> for Answer<'_, T> {
    type Value = Read<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an object with `{}` or `error`", self.key)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Read<T>, A::Error> {
        let mut record = None;
        let mut refused = false;
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if name == "error" {
                refused = true;
                map.next_value::<serde::de::IgnoredAny>()?;
            } else if name == self.key && record.is_none() {
                record = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(match (refused, record) {
            (true, _) => Read::Refusal,
            (false, Some(record)) => Read::Record(record),
            (false, None) => Read::Neither,
        })
    }
}

/// One connection outside the pool, for the operator's work (migrations,
/// audit); its driver stops when it is dropped.
pub struct Session {
    pub client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Session {
    pub async fn open(connect: &tls::ConnectOptions) -> Result<Self, DbError> {
        let (client, connection) = connect.connect().await?;
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "operator connection ended");
            }
        });
        Ok(Self { client, driver })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Record {
        n: i64,
    }

    fn decode(text: &str) -> Result<Result<Record, Refusal>, DbError> {
        decode_outcome(JsonText(text.as_bytes()), "record")
    }

    #[test]
    fn an_answer_gives_its_record_its_refusal_or_an_error() {
        let record = decode(r#"{"other": [1, {"x": "y"}], "record": {"n": 7}}"#);
        assert!(matches!(record, Ok(Ok(Record { n: 7 }))), "{record:?}");
        // An error wins wherever it stands, as it did when read as a value.
        let refused =
            decode(r#"{"record": {"n": 7}, "error": "balance_outstanding", "balance": 5}"#);
        assert!(
            matches!(refused, Ok(Err(Refusal::BalanceOutstanding { balance: 5 }))),
            "{refused:?}"
        );
        for broken in [
            r#"{"other": 1}"#,
            r#"{"record": {"n": "seven"}}"#,
            r#"{"record": {"n": 7}} and more"#,
            "[1]",
            r#"{"error": "no_such_refusal"}"#,
        ] {
            assert!(
                matches!(decode(broken), Err(DbError::Decode(_))),
                "{broken}"
            );
        }
    }

    #[test]
    fn jsonb_text_is_read_past_its_version_byte() {
        let read = |ty: &Type, raw: &'static [u8]| JsonText::from_sql(ty, raw).map(|text| text.0);
        assert_eq!(
            read(&Type::JSONB, b"\x01{\"a\":1}").ok(),
            Some(&b"{\"a\":1}"[..])
        );
        assert_eq!(
            read(&Type::JSON, b"{\"a\":1}").ok(),
            Some(&b"{\"a\":1}"[..])
        );
        assert!(read(&Type::JSONB, b"\x02{}").is_err());
        assert!(read(&Type::JSONB, b"").is_err());
        assert!(JsonText::accepts(&Type::JSONB) && !JsonText::accepts(&Type::TEXT));
    }
}
