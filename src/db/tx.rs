//! The tenant-scoped transaction: the only way to reach tenant data.

use deadpool_postgres::Object;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::DbError;
use crate::config::StatementMode;

/// A parameter with its PostgreSQL type, so a statement can be sent unnamed
/// (types known up front, one round trip) or prepared and cached.
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

const SET_TENANT: &str = "SELECT set_config('role', 'ontab_app', true), \
                                 set_config('ontab.business_id', $1, true), \
                                 set_config('statement_timeout', $2, true)";

/// An open transaction running as `ontab_app` for one business. It owns its
/// pooled connection; dropped without `commit`, it rolls back.
pub struct TenantTx {
    client: Option<Object>,
    statements: StatementMode,
    business_id: Uuid,
}

impl TenantTx {
    /// BEGIN and the tenant settings are pipelined: one round trip.
    pub(super) async fn begin(
        client: Object,
        business_id: Uuid,
        statements: StatementMode,
        statement_timeout: &str,
    ) -> Result<Self, DbError> {
        let tx = Self {
            client: Some(client),
            statements,
            business_id,
        };
        let business = business_id.to_string();
        let begin = tx.connection()?.batch_execute("BEGIN");
        let params: [Param<'_>; 2] = [(&business, Type::TEXT), (&statement_timeout, Type::TEXT)];
        let set_tenant = tx.query(SET_TENANT, &params);
        tokio::try_join!(async { begin.await.map_err(DbError::from) }, set_tenant)?;
        Ok(tx)
    }

    pub async fn commit(mut self) -> Result<(), DbError> {
        let client = self
            .client
            .take()
            .ok_or_else(|| DbError::Decode("transaction already ended".into()))?;
        client.batch_execute("COMMIT").await.map_err(DbError::from)
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
        let client = self.connection()?;
        match self.statements {
            StatementMode::Prepared => {
                let types: Vec<Type> = params.iter().map(|(_, ty)| ty.clone()).collect();
                let values: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|(value, _)| *value).collect();
                let statement = client.prepare_typed_cached(sql, &types).await?;
                Ok(client.query(&statement, &values).await?)
            }
            StatementMode::Unnamed => Ok(client.query_typed(sql, params).await?),
        }
    }

    /// Readies `sql` so that later `query` calls with these parameter types
    /// send at once. Pipelined calls (several queries in flight on this
    /// connection) then reach PostgreSQL in the order they were issued: a
    /// statement still being prepared could otherwise be overtaken by one
    /// already cached. Nothing to do for unnamed statements.
    pub async fn prepare(&self, sql: &str, types: &[Type]) -> Result<(), DbError> {
        if self.statements == StatementMode::Prepared {
            self.connection()?.prepare_typed_cached(sql, types).await?;
        }
        Ok(())
    }

    pub async fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    pub async fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, DbError> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| DbError::Decode(format!("no row returned by: {sql}")))
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
