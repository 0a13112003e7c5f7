//! Placing the schema on a distributed PostgreSQL (Citus), sharded by
//! business.
//!
//! Every tenant table carries `business_id` in each key, so every tenant
//! table is distributed by it, all colocated: one business's rows of every
//! table live on one node, and a use case of one business runs there. The
//! tables that have no tenant (`businesses`) or a key without one
//! (`api_keys`, found by its id alone at authentication) are reference
//! tables, copied to every node. `ontab_migrations` stays on the
//! coordinator.
//!
//! On plain PostgreSQL nothing here runs: `ontab migrate` calls [`place`]
//! after the migrations and it finds no `citus` extension. On a coordinator
//! it places every table not yet placed, so it is also what a later
//! migration's new table needs, and it may be run again after workers were
//! added (it lets ontab's roles log in on every worker, see below).

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::DbError;
use super::sql::{Column, Statement, statement};

/// Tables copied to every node: no tenant of their own, or a key without
/// one. Every other table but [`COORDINATOR_TABLES`] must carry
/// `business_id` in its primary key and every UNIQUE constraint (the
/// readiness test, tests/api/citus.rs, holds the schema to it).
pub const REFERENCE_TABLES: &[&str] = &["businesses", "api_keys"];

/// Tables that stay on the coordinator.
pub const COORDINATOR_TABLES: &[&str] = &["ontab_migrations"];

/// The table every distributed table is colocated with.
const ANCHOR: &str = "customers";

/// ontab's roles are NOLOGIN on one PostgreSQL: they are granted to login
/// roles, never logged in as. Citus reaches a worker as the role a
/// statement runs as (`ontab_app`, or the owner of a SECURITY DEFINER
/// function), so there they must be allowed to log in; and Citus copies a
/// role's attributes from the coordinator to a worker whenever it syncs
/// one (adding a node, say), so they are allowed on the coordinator too.
/// Who may actually log in is then pg_hba.conf's business: the nodes only,
/// by certificate or a password Citus keeps (docs/scale-out.md). Only
/// where a role cannot log in yet: roles are the whole cluster's, and two
/// databases placed at once would update one role's row together ("tuple
/// concurrently updated").
const LET_ROLES_LOG_IN: &str = "\
    DO $$
    DECLARE
        r text;
    BEGIN
        FOR r IN
            SELECT rolname FROM pg_roles
             WHERE rolname IN ('ontab_app', 'ontab_writer', 'ontab_recorder', 'ontab_reserver',
                               'ontab_system', 'ontab_outbox', 'ontab_sequencer')
               AND NOT rolcanlogin
             ORDER BY rolname
        LOOP
            EXECUTE format('ALTER ROLE %I LOGIN', r);
        END LOOP;
    END
    $$";

const HAS_CITUS: &str = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')";

/// Tables that should be distributed or reference tables and are not
/// (`$1`: those that stay on the coordinator).
const UNPLACED: &str = "\
    SELECT c.relname::text FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
       AND c.relname <> ALL ($1::text[])
       AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
     ORDER BY c.relname";

pub(super) const STATEMENTS: &[Statement] = &[statement!(HAS_CITUS, &[], &[Column::at::<bool>(0)])];

/// Statements that only a Citus coordinator can prepare (they read its
/// catalog): registered apart, prepared by the Citus suite
/// (tests/api/citus.rs).
pub(super) const CITUS_ONLY: &[Statement] = &[statement!(
    UNPLACED,
    &[Type::TEXT_ARRAY],
    &[Column::at::<String>(0)]
)];

/// Places every table not yet placed, in one transaction. Citus refuses
/// to distribute a table with a foreign key to a table that is not yet
/// distributed (and turns a table referencing a new reference table into
/// a coordinator-local one), so the foreign keys touching an unplaced table
/// are dropped first and added back, unchanged and checked, once every
/// table is placed. Triggers stay on the shards
/// (`citus.enable_unsafe_triggers`): ontab's guards are per-business and
/// run on the node that holds the business.
fn placing(reference: &str, coordinator: &str) -> String {
    format!(
        "DO $$
DECLARE
    fk record;
    f record;
    fks text[] := '{{}}';
    def text;
    t text;
BEGIN
    SET LOCAL citus.enable_unsafe_triggers = on;
    SET LOCAL citus.multi_shard_modify_mode = 'sequential';
    FOR fk IN
        SELECT c.conrelid::regclass AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def
          FROM pg_constraint c
          JOIN pg_class r ON r.oid = c.conrelid
         WHERE c.contype = 'f' AND r.relnamespace = 'public'::regnamespace
           AND (NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.conrelid)
                OR NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.confrelid))
         ORDER BY c.conrelid::regclass::text, c.conname
    LOOP
        fks := fks || format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.tbl, fk.conname, fk.def);
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END LOOP;
    FOREACH t IN ARRAY {reference} LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = t::regclass) THEN
            PERFORM create_reference_table(t);
        END IF;
    END LOOP;
    FOR t IN
        SELECT c.relname FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
           AND c.relname <> ALL ({reference}) AND c.relname <> ALL ({coordinator})
           AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
         ORDER BY c.relname <> '{ANCHOR}', c.relname
    LOOP
        PERFORM create_distributed_table(t, 'business_id',
                    colocate_with => CASE WHEN t = '{ANCHOR}' THEN 'default' ELSE '{ANCHOR}' END);
    END LOOP;
    FOREACH def IN ARRAY fks LOOP
        EXECUTE def;
    END LOOP;
    -- The use cases keep one generic plan per statement on one
    -- PostgreSQL (0004). Citus cannot plan most of their statements
    -- without the parameters' values (could not create distributed
    -- plan), and under plan_cache_mode auto PostgreSQL would try a generic
    -- plan after five calls: here they are planned at each call.
    FOR f IN
        SELECT p.oid::regprocedure AS fn
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND p.proconfig @> ARRAY['plan_cache_mode=force_generic_plan']
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_custom_plan', f.fn);
    END LOOP;
    -- Each use case runs whole on the node that holds its business
    -- (migrations/0015): distributed by its p_business argument, delegated
    -- even inside the server's transactions.
    FOR f IN
        SELECT p.oid::regprocedure AS fn
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND p.proname ~ '^ontab_.*_for$'
           AND p.proargnames[p.pronargs] = 'p_business'
           AND NOT EXISTS (SELECT 1 FROM pg_dist_object o
                            WHERE o.classid = 'pg_proc'::regclass AND o.objid = p.oid
                              AND o.distribution_argument_index IS NOT NULL)
    LOOP
        PERFORM create_distributed_function(f.fn, 'p_business',
                                            colocate_with => '{ANCHOR}', force_delegation => true);
    END LOOP;
    -- SET LOCAL (the tenant, the actor) reaches the workers a transaction
    -- uses only with this (docs/scale-out.md).
    EXECUTE format('ALTER DATABASE %I SET citus.propagate_set_commands = local', current_database());
    -- Every other statement too, on every node (the triggers run on the
    -- workers): a statement planned without its parameters' values cannot
    -- be routed to the one shard that holds the business, and from a
    -- trigger on a shard it would have to reach every shard.
    EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', current_database());
END
$$"
    )
}

/// `names` as an SQL `text[]` literal (they are this module's constants).
fn text_array(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
    format!("ARRAY[{}]::text[]", quoted.join(", "))
}

/// On a Citus coordinator, distributes every tenant table not yet
/// distributed (and makes the reference tables), delegates the use cases,
/// and lets ontab's roles log in. Does nothing on plain PostgreSQL.
pub async fn place(client: &mut Client) -> Result<(), DbError> {
    if !has_citus(client).await? {
        return Ok(());
    }
    let tx = client.transaction().await?;
    tx.batch_execute(&placing(
        &text_array(REFERENCE_TABLES),
        &text_array(COORDINATOR_TABLES),
    ))
    .await?;
    tx.commit().await?;
    client.batch_execute(LET_ROLES_LOG_IN).await?;
    Ok(())
}

/// Whether the database is a Citus coordinator (the extension exists).
pub async fn has_citus(client: &Client) -> Result<bool, DbError> {
    Ok(client.query_typed_one(HAS_CITUS, &[]).await?.try_get(0)?)
}

/// On a Citus coordinator, the tables `ontab migrate` has yet to place:
/// `serve` refuses to start on a half-placed schema, where a business's
/// rows would be split between the coordinator and the workers.
pub async fn unplaced(client: &Client) -> Result<Vec<String>, DbError> {
    if !has_citus(client).await? {
        return Ok(Vec::new());
    }
    unplaced_tables(client).await
}

async fn unplaced_tables(client: &Client) -> Result<Vec<String>, DbError> {
    let skip: Vec<String> = COORDINATOR_TABLES
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    // Unnamed: `serve` may check through PgBouncer in transaction mode.
    let rows = client
        .query_typed(UNPLACED, &[(&skip, Type::TEXT_ARRAY)])
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?)
}
