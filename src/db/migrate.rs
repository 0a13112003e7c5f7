//! Applies the SQL files of `migrations/`, in order, exactly once each.
//!
//! Hand-written rather than a migration crate: it is one transaction with an
//! advisory lock and a checksum per file, and it must run unchanged through
//! tokio-postgres (sqlx's migrator would bring a second driver).
//!
//! The rules of a released schema: migrations only gain files (never edit
//! or remove one; `.ci/migrations-append-only.sh` checks it), and a
//! database this binary does not fully understand is refused before
//! anything is applied: one with a version this binary does not know
//! (migrated by a newer or a different ontab), or one whose applied
//! migration differs from this binary's file of the same version.

use sha2::{Digest, Sha256};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

use super::DbError;
use super::sql::{Column, Statement, statement};

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
        name: "security",
        sql: include_str!("../../migrations/0003_security.sql"),
    },
    Migration {
        version: 4,
        name: "use_cases",
        sql: include_str!("../../migrations/0004_use_cases.sql"),
    },
    Migration {
        version: 5,
        name: "events",
        sql: include_str!("../../migrations/0005_events.sql"),
    },
    Migration {
        version: 6,
        name: "webhooks",
        sql: include_str!("../../migrations/0006_webhooks.sql"),
    },
    Migration {
        version: 7,
        name: "prune_after_delivery",
        sql: include_str!("../../migrations/0007_prune_after_delivery.sql"),
    },
    Migration {
        version: 8,
        name: "claim_next_of_subject",
        sql: include_str!("../../migrations/0008_claim_next_of_subject.sql"),
    },
    Migration {
        version: 9,
        name: "delivery_rounds_by_index",
        sql: include_str!("../../migrations/0009_delivery_rounds_by_index.sql"),
    },
    Migration {
        version: 10,
        name: "attempts_in_batches",
        sql: include_str!("../../migrations/0010_attempts_in_batches.sql"),
    },
    Migration {
        version: 11,
        name: "chain_head_in_key",
        sql: include_str!("../../migrations/0011_chain_head_in_key.sql"),
    },
    Migration {
        version: 12,
        name: "attempts_of_delivery",
        sql: include_str!("../../migrations/0012_attempts_of_delivery.sql"),
    },
    Migration {
        version: 13,
        name: "expired_holds_planned_once",
        sql: include_str!("../../migrations/0013_expired_holds_planned_once.sql"),
    },
    Migration {
        version: 14,
        name: "functions_planned_once",
        sql: include_str!("../../migrations/0014_functions_planned_once.sql"),
    },
    Migration {
        version: 15,
        name: "use_cases_for_a_business",
        sql: include_str!("../../migrations/0015_use_cases_for_a_business.sql"),
    },
    Migration {
        version: 16,
        name: "lease_at_fan_out",
        sql: include_str!("../../migrations/0016_lease_at_fan_out.sql"),
    },
    Migration {
        version: 17,
        name: "batch_rows_on_citus",
        sql: include_str!("../../migrations/0017_batch_rows_on_citus.sql"),
    },
    Migration {
        version: 18,
        name: "background_work_on_citus",
        sql: include_str!("../../migrations/0018_background_work_on_citus.sql"),
    },
    Migration {
        version: 19,
        name: "delivery_on_citus",
        sql: include_str!("../../migrations/0019_delivery_on_citus.sql"),
    },
    Migration {
        version: 20,
        name: "bookkeeping_planned_per_call",
        sql: include_str!("../../migrations/0020_bookkeeping_planned_per_call.sql"),
    },
    Migration {
        version: 21,
        name: "event_order_across_shard_moves",
        sql: include_str!("../../migrations/0021_event_order_across_shard_moves.sql"),
    },
    Migration {
        version: 22,
        name: "set_based_writes_on_one_postgres",
        sql: include_str!("../../migrations/0022_set_based_writes_on_one_postgres.sql"),
    },
    Migration {
        version: 23,
        name: "batch_reads_by_key",
        sql: include_str!("../../migrations/0023_batch_reads_by_key.sql"),
    },
    Migration {
        version: 24,
        name: "subject_runs",
        sql: include_str!("../../migrations/0024_subject_runs.sql"),
    },
    Migration {
        version: 25,
        name: "deliveries_born_leased",
        sql: include_str!("../../migrations/0025_deliveries_born_leased.sql"),
    },
    Migration {
        version: 26,
        name: "batch_reads_probe_keys",
        sql: include_str!("../../migrations/0026_batch_reads_probe_keys.sql"),
    },
    Migration {
        version: 27,
        name: "guards_planned_once",
        sql: include_str!("../../migrations/0027_guards_planned_once.sql"),
    },
    Migration {
        version: 28,
        name: "no_temporary_shadows",
        sql: include_str!("../../migrations/0028_no_temporary_shadows.sql"),
    },
    Migration {
        version: 29,
        name: "app_fired_triggers_fixed_path",
        sql: include_str!("../../migrations/0029_app_fired_triggers_fixed_path.sql"),
    },
    Migration {
        version: 30,
        name: "batch_reads_probe_every_key",
        sql: include_str!("../../migrations/0030_batch_reads_probe_every_key.sql"),
    },
    Migration {
        version: 31,
        name: "settled_cursor",
        sql: include_str!("../../migrations/0031_settled_cursor.sql"),
    },
    Migration {
        version: 32,
        name: "window_plans_kept",
        sql: include_str!("../../migrations/0032_window_plans_kept.sql"),
    },
];

// An arbitrary constant naming "ontab migrations" among advisory locks.
const LOCK: &str = "SELECT pg_advisory_xact_lock(7041726001)";
const RECORD: &str = "INSERT INTO ontab_migrations (version, name, sha256) VALUES ($1, $2, $3)";
const APPLIED: &str = "SELECT version, name, sha256 FROM ontab_migrations ORDER BY version";
const HAS_SCHEMA: &str = "SELECT to_regclass('ontab_migrations') IS NOT NULL";

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(LOCK, &[], &[]),
    statement!(RECORD, &[Type::INT4, Type::TEXT, Type::BYTEA], &[]),
    statement!(
        APPLIED,
        &[],
        &[
            Column::at::<i32>(0),
            Column::at::<String>(1),
            Column::at::<Vec<u8>>(2),
        ],
    ),
    statement!(HAS_SCHEMA, &[], &[Column::at::<bool>(0)]),
];

/// Connects with `options`, migrates, disconnects.
pub async fn run_on(options: &super::tls::ConnectOptions) -> Result<Vec<i32>, DbError> {
    let (mut client, connection) = options.connect().await?;
    let driver = tokio::spawn(connection);
    let applied = match run(&mut client).await {
        Ok(applied) => super::citus::place(&mut client).await.map(|()| applied),
        Err(error) => Err(error),
    };
    drop(client);
    let _ = driver.await;
    applied
}

/// Applies pending migrations in one transaction and returns their versions.
/// Concurrent runs against one database wait for each other; a database
/// with an applied migration this binary does not know, or knows
/// differently, is refused with nothing applied.
pub async fn run(client: &mut Client) -> Result<Vec<i32>, DbError> {
    let tx = client.transaction().await?;
    tx.execute(LOCK, &[]).await?;
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
    let applied = read_applied(&tx).await?;
    check_applied(&applied)?;
    let mut newly_applied = Vec::new();
    for migration in MIGRATIONS {
        if applied.iter().any(|row| row.version == migration.version) {
            continue;
        }
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            RECORD,
            &[&migration.version, &migration.name, &migration.sha256()],
        )
        .await?;
        newly_applied.push(migration.version);
    }
    // Not part of the schema, so checked at every run: a copy of the
    // database (CREATE DATABASE … TEMPLATE, a restore without --create)
    // has PUBLIC's default privileges back.
    tx.batch_execute(NO_TEMPORARY_TABLES).await?;
    tx.commit().await?;
    Ok(newly_applied)
}

/// Revokes TEMPORARY on the database from PUBLIC, if PUBLIC has it: a
/// temporary table named like one of ontab's would hide it, in its
/// session, from every trigger and use case that names it (PostgreSQL
/// looks in pg_temp first; migrations/0028). Only the database's owner or
/// a superuser may: for anyone else REVOKE warns and changes nothing, and
/// `serve` then names the login's TEMPORARY at start (`db::login`).
const NO_TEMPORARY_TABLES: &str = "\
    DO $$
    BEGIN
        IF EXISTS (SELECT 1
                     FROM pg_database d,
                          aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                    WHERE d.datname = current_database()
                      AND a.grantee = 0 AND a.privilege_type = 'TEMPORARY') THEN
            EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
        END IF;
    END
    $$";

/// Checks, changing nothing, that the database is migrated to exactly this
/// binary's migrations: for `ontab serve` running as a login role that is
/// only `ontab_app` (migrations/0003), which may read `ontab_migrations` but
/// not migrate. Refuses pending, unknown and differing migrations, naming
/// the first.
pub async fn verify(client: &Client) -> Result<(), DbError> {
    let schema = client.query_typed_one(HAS_SCHEMA, &[]).await?;
    let has_schema: bool = schema
        .try_get(0)
        .map_err(|error| DbError::Decode(format!("ontab_migrations: {error}")))?;
    if !has_schema {
        return Err(DbError::Config(
            "the database has no ontab schema yet (no ontab_migrations table): \
             run `ontab migrate` with the owner's DATABASE_URL first"
                .into(),
        ));
    }
    let applied = read_applied(client).await?;
    check_applied(&applied)?;
    if let Some(pending) = MIGRATIONS
        .iter()
        .find(|m| !applied.iter().any(|row| row.version == m.version))
    {
        return Err(DbError::Config(format!(
            "the database lacks migration {:04}_{}: run `ontab migrate` with the owner's DATABASE_URL first",
            pending.version, pending.name
        )));
    }
    let unplaced = super::citus::unplaced(client).await?;
    if !unplaced.is_empty() {
        return Err(DbError::Config(format!(
            "this Citus coordinator has tables not yet distributed ({}): \
             run `ontab migrate` with the owner's DATABASE_URL first",
            unplaced.join(", ")
        )));
    }
    Ok(())
}

async fn read_applied(client: &impl GenericClient) -> Result<Vec<Applied>, DbError> {
    // Unnamed (query_typed): `serve` may verify through PgBouncer in
    // transaction mode, which keeps no prepared statement between two.
    client
        .query_typed(APPLIED, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Applied {
                version: row.try_get(0)?,
                name: row.try_get(1)?,
                sha256: row.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(|error| DbError::Decode(format!("ontab_migrations: {error}")))
}

/// A row of `ontab_migrations`.
struct Applied {
    version: i32,
    name: String,
    sha256: Vec<u8>,
}

impl Migration {
    fn sha256(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

/// Refuses a database whose applied migrations are not a prefix of this
/// binary's: applying ours on top of a schema we do not know could break it,
/// and serving it could break its invariants. One line, naming the version.
fn check_applied(applied: &[Applied]) -> Result<(), DbError> {
    for row in applied {
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == row.version) else {
            return Err(DbError::Config(format!(
                "the database has migration {:04}_{} applied, which this ontab does not know: \
                 it was migrated by a newer or different ontab; refusing to start",
                row.version, row.name
            )));
        };
        if known.sha256() != row.sha256 {
            return Err(DbError::Config(format!(
                "migration {:04}_{} applied to the database differs from this ontab's \
                 (sha256 {} there, {} here): it was migrated by a different ontab, \
                 or the file was edited after release; refusing to start",
                row.version,
                known.name,
                short_hex(&row.sha256),
                short_hex(&known.sha256()),
            )));
        }
    }
    Ok(())
}

/// The first 6 bytes of a digest, enough to tell two apart in a message.
fn short_hex(digest: &[u8]) -> String {
    hex::encode(&digest[..digest.len().min(6)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: i32, sha256: Vec<u8>) -> Applied {
        Applied {
            version,
            name: format!("m{version}"),
            sha256,
        }
    }

    #[test]
    fn a_prefix_of_the_known_migrations_is_accepted() {
        let prefix: Vec<Applied> = MIGRATIONS
            .iter()
            .take(2)
            .map(|m| applied(m.version, m.sha256()))
            .collect();
        assert!(check_applied(&prefix).is_ok());
        assert!(check_applied(&[]).is_ok());
    }

    #[test]
    fn an_unknown_applied_version_is_refused_by_number() {
        let mut rows: Vec<Applied> = MIGRATIONS
            .iter()
            .map(|m| applied(m.version, m.sha256()))
            .collect();
        rows.push(applied(9999, vec![0; 32]));
        let error = check_applied(&rows).err().map(|e| e.to_string());
        let message = error.unwrap_or_default();
        assert!(message.contains("9999_m9999"), "{message}");
        assert!(message.contains("does not know"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }

    #[test]
    fn an_applied_migration_with_another_checksum_is_refused_by_number() {
        let rows = [applied(MIGRATIONS[0].version, vec![0; 32])];
        let error = check_applied(&rows).err().map(|e| e.to_string());
        let message = error.unwrap_or_default();
        assert!(message.contains("migration 0001_schema"), "{message}");
        assert!(message.contains("differs"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
}
