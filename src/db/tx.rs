//! The tenant-scoped transaction: the only way to reach tenant data.

use deadpool_postgres::Object;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, RowStream};
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{DbError, StatementMode, column};

/// A parameter with its PostgreSQL type, so a statement can be sent unnamed
/// (types known up front, one round trip) or prepared and cached.
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// Switches to role `ontab_app`, sets the statement timeout (`$3`, in
/// milliseconds), and reads which of the presented API keys
/// (`$2`) are still live keys of the business (`$1`), so a key revoked
/// after it was authenticated (perhaps through another server instance)
/// does no work, at no extra round trip.
///
/// Both are set with `set_config`, which stays on this node: a distributed
/// PostgreSQL (Citus) reaches its workers as the role a statement runs as
/// anyway (`ontab_app`, or the owner of a SECURITY DEFINER function), and a
/// forwarded `SET ROLE ontab_app` would fail on a connection made as such
/// an owner; the coordinator's timeout cancels a statement's work on the
/// workers too. The key check runs after the switch
/// (OFFSET 0 keeps the switch in its own subquery, so the planner cannot
/// fold it into the check), as the tenant, whom row level security lets
/// see this business's keys; its privileges are those of the connecting
/// user (checked when the statement starts).
const LIVE_KEYS: &str = "\
    SELECT ARRAY(SELECT k.id FROM api_keys k
                  WHERE k.business_id = $1
                    AND k.id = ANY ($2)
                    AND k.revoked_at IS NULL) AS live_keys
      FROM (SELECT set_config('role', 'ontab_app', true) AS role,
                   set_config('statement_timeout', $3, true) AS statement_timeout
             OFFSET 0) AS acting";

/// The settings that make a transaction a tenant's, besides its role and
/// timeout: the business (`ontab.business_id`, which row level security
/// reads) and who acts (`ontab.actor`, for the history the
/// triggers write). Each is its own `SET LOCAL` statement, for two
/// reasons: Citus forwards `SET LOCAL` commands to the workers a
/// transaction reaches (`citus.propagate_set_commands = local`, which
/// `ontab migrate` sets there), where `set_config()` stays on the node it
/// ran on; and Citus forwards a command as the whole query string it came
/// in, so several in one string would be replayed together (see
/// docs/scale-out.md). Being transaction-local, none of them outlives the
/// transaction: a pooled connection (or a PgBouncer server connection in
/// transaction mode) never carries a tenant into its next use.
///
/// `SET` takes no parameters, so values are literals: the business is a
/// UUID, formatted here; the actor is quoted.
fn tenant_settings(business_id: Uuid, actor: &str) -> [String; 2] {
    [
        format!("SET LOCAL ontab.business_id = '{business_id}'"),
        format!("SET LOCAL ontab.actor = {}", quote_literal(actor)),
    ]
}

/// `value` as an SQL string literal (standard_conforming_strings, on since
/// PostgreSQL 9.1: only the quote itself needs doubling). A NUL cannot be
/// sent in a query, so it is dropped rather than let the statement fail.
fn quote_literal(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        match c {
            '\'' => quoted.push_str("''"),
            '\0' => {}
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// An open transaction running as `ontab_app` for one business. It owns its
/// pooled connection; dropped without `commit`, it rolls back.
pub struct TenantTx {
    client: Option<Object>,
    statements: StatementMode,
    business_id: Uuid,
}

impl TenantTx {
    /// BEGIN, the tenant settings and the key check are pipelined: one
    /// round trip. Answers the transaction and which of `key_ids` are live
    /// keys of the business (the caller decides what a dead one means).
    pub(super) async fn begin(
        client: Object,
        business_id: Uuid,
        key_ids: &[Uuid],
        actor: &str,
        statements: StatementMode,
        statement_timeout: &str,
    ) -> Result<(Self, Vec<Uuid>), DbError> {
        let tx = Self {
            client: Some(client),
            statements,
            business_id,
        };
        let connection = tx.connection()?;
        let [business, acting] = tenant_settings(business_id, actor);
        let run = |sql: String| async move { connection.batch_execute(&sql).await };
        let params: [Param<'_>; 3] = [
            (&business_id, Type::UUID),
            (&key_ids, Type::UUID_ARRAY),
            (&statement_timeout, Type::TEXT),
        ];
        let (_, _, _, settings) = tokio::try_join!(
            async { run("BEGIN".to_owned()).await.map_err(DbError::from) },
            async { run(business).await.map_err(DbError::from) },
            async { run(acting).await.map_err(DbError::from) },
            tx.query_one(LIVE_KEYS, &params),
        )?;
        let live_keys = column(&settings, "live_keys")?;
        Ok((tx, live_keys))
    }

    /// Commits. Once COMMIT is sent the transaction may commit whatever
    /// happens to this future or the connection; an answer that never
    /// comes is `DbError::CommitOutcomeUnknown`, not "nothing written".
    pub async fn commit(mut self) -> Result<(), DbError> {
        let client = self
            .client
            .take()
            .ok_or_else(|| DbError::Decode("transaction already ended".into()))?;
        client.batch_execute("COMMIT").await.map_err(commit_error)
    }

    fn connection(&self) -> Result<&Object, DbError> {
        self.client
            .as_ref()
            .ok_or_else(|| DbError::Decode("transaction already ended".into()))
    }

    /// The business this transaction acts for.
    pub fn business_id(&self) -> Uuid {
        self.business_id
    }

    pub async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        query_on(self.connection()?, self.statements, sql, params).await
    }

    /// Readies `sql` so that later `query` calls with these parameter types
    /// send at once. Pipelined calls (several queries in flight on this
    /// connection) then reach PostgreSQL in the order they were issued: a
    /// statement still being prepared could otherwise be overtaken by one
    /// already cached. Nothing to do for unnamed statements.
    pub async fn prepare(&self, sql: &str, types: &[Type]) -> Result<(), DbError> {
        if cfg!(debug_assertions) {
            super::sql::check_bound(sql, types)?;
        }
        if self.statements == StatementMode::Prepared {
            self.connection()?.prepare_typed_cached(sql, types).await?;
        }
        Ok(())
    }

    /// `query`, with the rows handed over as PostgreSQL sends them instead of
    /// gathered into one `Vec` first.
    pub async fn query_stream(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<RowStream, DbError> {
        let client = self.connection()?;
        let types: Vec<Type> = params.iter().map(|(_, ty)| ty.clone()).collect();
        if cfg!(debug_assertions) {
            super::sql::check_bound(sql, &types)?;
        }
        let values = params.iter().map(|(value, _)| *value);
        Ok(match self.statements {
            StatementMode::Prepared => {
                let statement = client.prepare_typed_cached(sql, &types).await?;
                client.query_raw(&statement, values).await?
            }
            StatementMode::Unnamed => client.query_typed_raw(sql, params.iter().cloned()).await?,
        })
    }

    pub async fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    pub async fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, DbError> {
        self.query_opt(sql, params).await?.ok_or_else(|| {
            DbError::Decode("a statement that always answers a row answered none".into())
        })
    }
}

/// Runs `sql` on `client`, prepared and cached or unnamed.
pub(super) async fn query_on(
    client: &Object,
    statements: StatementMode,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Row>, DbError> {
    let types = || {
        params
            .iter()
            .map(|(_, ty)| ty.clone())
            .collect::<Vec<Type>>()
    };
    if cfg!(debug_assertions) {
        super::sql::check_bound(sql, &types())?;
    }
    match statements {
        StatementMode::Prepared => {
            let types = types();
            let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(value, _)| *value).collect();
            let statement = client.prepare_typed_cached(sql, &types).await?;
            Ok(client.query(&statement, &values).await?)
        }
        StatementMode::Unnamed => Ok(client.query_typed(sql, params).await?),
    }
}

/// An error answered to COMMIT. A deferred check that fired, or a
/// serialization failure, rolled the transaction back: those are ordinary
/// errors. A lost connection, a terminated backend or an interrupted wait
/// (for a synchronous standby, say) may come after the commit record was
/// written: the outcome is unknown.
fn commit_error(error: tokio_postgres::Error) -> DbError {
    let unknown = match error.code() {
        None => true,
        Some(code) => {
            let class = code.code().get(..2);
            matches!(class, Some("08" | "57")) || *code == SqlState::IO_ERROR
        }
    };
    if unknown {
        DbError::CommitOutcomeUnknown(super::describe_pg(&error))
    } else {
        DbError::from(error)
    }
}

impl Drop for TenantTx {
    /// Ends an unfinished transaction before the connection goes back to the
    /// pool. A connection whose ROLLBACK fails is broken, and the pool
    /// discards closed connections when it hands them out again.
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = client.batch_execute("ROLLBACK").await {
                        tracing::debug!(%error, "rollback of an abandoned transaction failed");
                    }
                });
            }
            // No runtime to roll back on: close the connection instead of
            // returning it to the pool mid-transaction.
            Err(_) => drop(Object::take(client)),
        }
    }
}

pub(super) const STATEMENTS: &[Statement] = &[statement!(
    LIVE_KEYS,
    &[Type::UUID, Type::UUID_ARRAY, Type::TEXT],
    &[Column::named::<Vec<Uuid>>("live_keys")]
)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_their_quotes_and_drop_nul() {
        assert_eq!(quote_literal("admin"), "'admin'");
        assert_eq!(quote_literal("o'neil"), "'o''neil'");
        assert_eq!(quote_literal("a\0b"), "'ab'");
        assert_eq!(quote_literal(""), "''");
    }

    #[test]
    fn every_setting_is_its_own_set_local() {
        let business = Uuid::nil();
        let settings = tenant_settings(business, "x'; RESET ROLE; --");
        assert_eq!(
            settings,
            [
                format!("SET LOCAL ontab.business_id = '{business}'"),
                "SET LOCAL ontab.actor = 'x''; RESET ROLE; --'".to_owned(),
            ]
        );
    }
}
