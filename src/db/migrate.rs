//! Applies the SQL files of `migrations/`, in order, exactly once each.
//!
//! Hand-written rather than a migration crate: it is one transaction with an
//! advisory lock and a checksum per file, and it must run unchanged through
//! tokio-postgres (sqlx's migrator would bring a second driver).

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::DbError;

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "schema",
        sql: include_str!("../../migrations/0001_schema.sql"),
    },
    Migration {
        version: 2,
        name: "guards",
        sql: include_str!("../../migrations/0002_guards.sql"),
    },
    Migration {
        version: 3,
        name: "row_level_security",
        sql: include_str!("../../migrations/0003_row_level_security.sql"),
    },
    Migration {
        version: 4,
        name: "use_cases",
        sql: include_str!("../../migrations/0004_use_cases.sql"),
    },
    Migration {
        version: 5,
        name: "settlement_and_limit_history",
        sql: include_str!("../../migrations/0005_settlement_and_limit_history.sql"),
    },
    Migration {
        version: 6,
        name: "complete_on_every_line",
        sql: include_str!("../../migrations/0006_complete_on_every_line.sql"),
    },
    Migration {
        version: 7,
        name: "audit_access",
        sql: include_str!("../../migrations/0007_audit_access.sql"),
    },
    Migration {
        version: 8,
        name: "purchase_refusal_order",
        sql: include_str!("../../migrations/0008_purchase_refusal_order.sql"),
    },
    Migration {
        version: 9,
        name: "cheaper_ledger_guards",
        sql: include_str!("../../migrations/0009_cheaper_ledger_guards.sql"),
    },
    Migration {
        version: 10,
        name: "products_by_key",
        sql: include_str!("../../migrations/0010_products_by_key.sql"),
    },
    Migration {
        version: 11,
        name: "purchase_batch",
        sql: include_str!("../../migrations/0011_purchase_batch.sql"),
    },
    Migration {
        version: 12,
        name: "one_order_check_per_line",
        sql: include_str!("../../migrations/0012_one_order_check_per_line.sql"),
    },
];

/// Connects with `options`, migrates, disconnects.
pub async fn run_on(options: &super::tls::ConnectOptions) -> Result<Vec<i32>, DbError> {
    let (mut client, connection) = options.connect().await?;
    let driver = tokio::spawn(connection);
    let applied = run(&mut client).await;
    drop(client);
    let _ = driver.await;
    applied
}

/// Applies pending migrations in one transaction and returns their versions.
/// Concurrent runs against one database wait for each other; a migration
/// edited after it was applied is refused rather than silently skipped.
pub async fn run(client: &mut Client) -> Result<Vec<i32>, DbError> {
    let tx = client.transaction().await?;
    // An arbitrary constant naming "ontab migrations" among advisory locks.
    tx.execute("SELECT pg_advisory_xact_lock(7041726001)", &[])
        .await?;
    // "already exists, skipping" notices are expected on every start.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ontab_migrations (
             version    int PRIMARY KEY,
             name       text NOT NULL,
             sha256     bytea NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let applied = tx
        .query("SELECT version, sha256 FROM ontab_migrations", &[])
        .await?;
    let mut newly_applied = Vec::new();
    for migration in MIGRATIONS {
        let checksum = Sha256::digest(migration.sql.as_bytes()).to_vec();
        let existing = applied
            .iter()
            .find(|row| row.get::<_, i32>(0) == migration.version);
        match existing {
            Some(row) if row.get::<_, Vec<u8>>(1) == checksum => continue,
            Some(_) => {
                return Err(DbError::Config(format!(
                    "migration {:04}_{} was changed after it was applied; add a new migration instead",
                    migration.version, migration.name
                )));
            }
            None => {
                tx.batch_execute(migration.sql).await?;
                tx.execute(
                    "INSERT INTO ontab_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                    &[&migration.version, &migration.name, &checksum],
                )
                .await?;
                newly_applied.push(migration.version);
            }
        }
    }
    tx.commit().await?;
    Ok(newly_applied)
}
