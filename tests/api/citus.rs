//! Scale-out on Citus (docs/scale-out.md).
//!
//! The readiness tests run on every PostgreSQL, plain included: they hold
//! the schema and the server's SQL to what distributing by business needs,
//! so a change that would break Citus fails here, in every CI run.
//!
//! The placement tests need a Citus coordinator: they run when
//! ONTAB_TEST_CITUS_URL names one (see tests/api/helpers.rs), and say they
//! are skipped otherwise. With it set, the rest of the suite runs there too:
//! `ONTAB_TEST_CITUS_URL=... cargo test --test api -- <modules>` (the
//! README lists the ones the Citus suite is).

use std::collections::BTreeSet;

use ontab::db::citus::{COORDINATOR_TABLES, REFERENCE_TABLES};
use serde_json::json;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::helpers::{TestApp, as_tenant, citus_url};

/// The tables that must be sharded by business: all but the reference and
/// coordinator tables.
async fn tenant_tables(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
                AND c.relname <> ALL ($1)
              ORDER BY 1",
            &[&REFERENCE_TABLES
                .iter()
                .chain(COORDINATOR_TABLES)
                .map(|t| (*t).to_owned())
                .collect::<Vec<_>>()],
        )
        .await
        .expect("tables")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn every_tenant_key_carries_the_business() {
    let app = TestApp::spawn().await;
    let client = app.sql().await;
    let tables = tenant_tables(&client).await;
    assert!(tables.len() > 20, "found only {tables:?}");
    let mut wrong = Vec::new();
    for table in &tables {
        let has_business: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute
                                 WHERE attrelid = $1::text::regclass AND attname = 'business_id'
                                   AND NOT attisdropped)",
                &[table],
            )
            .await
            .expect("columns")
            .get(0);
        if !has_business {
            wrong.push(format!("{table} has no business_id"));
        }
    }
    // Primary keys, UNIQUE constraints and unique indexes: Citus enforces
    // uniqueness per shard only, so each must include the distribution
    // column.
    let uniques = client
        .query(
            "SELECT c.relname::text, i.indexrelid::regclass::text
               FROM pg_index i
               JOIN pg_class c ON c.oid = i.indrelid
              WHERE c.relnamespace = 'public'::regnamespace AND i.indisunique
                AND c.relname = ANY ($1)
                AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                 WHERE a.attrelid = i.indrelid AND a.attname = 'business_id'
                                   AND a.attnum = ANY (i.indkey::int2[]))",
            &[&tables],
        )
        .await
        .expect("indexes");
    for row in uniques {
        let (table, index): (String, String) = (row.get(0), row.get(1));
        wrong.push(format!("{table}: unique index {index} lacks business_id"));
    }
    // Foreign keys between tenant tables join on the business; to a
    // reference table they may not (`businesses (id)`).
    let foreign = client
        .query(
            "SELECT c.conrelid::regclass::text, c.conname::text, c.confrelid::regclass::text,
                    pg_get_constraintdef(c.oid)
               FROM pg_constraint c
              WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
                AND c.conrelid::regclass::text = ANY ($1)",
            &[&tables],
        )
        .await
        .expect("foreign keys");
    for row in foreign {
        let (table, name, target, definition): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if REFERENCE_TABLES.contains(&target.as_str()) {
            continue;
        }
        if !definition.starts_with("FOREIGN KEY (business_id,")
            || !definition.contains("(business_id,")
        {
            wrong.push(format!("{table}.{name} to {target}: {definition}"));
        }
    }
    assert!(wrong.is_empty(), "not shardable by business: {wrong:#?}");
}

#[tokio::test]
async fn row_level_security_policies_have_no_subqueries() {
    // Citus evaluates a policy on the shard; a subquery there would read
    // other shards.
    let app = TestApp::spawn().await;
    let client = app.sql().await;
    let with_subqueries: Vec<String> = client
        .query(
            "SELECT tablename || '.' || policyname FROM pg_policies
              WHERE schemaname = 'public'
                AND (coalesce(qual, '') ~* '\\mselect\\M'
                     OR coalesce(with_check, '') ~* '\\mselect\\M')",
            &[],
        )
        .await
        .expect("policies")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        with_subqueries.is_empty(),
        "policies with subqueries: {with_subqueries:?}"
    );
}

#[tokio::test]
async fn the_tenant_is_set_with_set_local_only() {
    // set_config() stays on the node it runs on; SET LOCAL reaches the
    // workers (citus.propagate_set_commands). Neither the server's SQL nor
    // any function may set the tenant otherwise.
    let mut in_source = Vec::new();
    let mut pending = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                if text.contains("set_config('ontab.business_id'") {
                    in_source.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        in_source.is_empty(),
        "set_config of the tenant in {in_source:?}"
    );
    let app = TestApp::spawn().await;
    let in_functions: Vec<String> = app
        .sql()
        .await
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace
                AND p.prosrc LIKE '%set\\_config(''ontab.business\\_id''%'",
            &[],
        )
        .await
        .expect("functions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        in_functions.is_empty(),
        "functions setting the tenant with set_config: {in_functions:?}"
    );
}

#[tokio::test]
async fn the_server_calls_use_cases_by_their_business() {
    // A use case (a SECURITY DEFINER function of the tenant) is called
    // through its ontab_<name>_for(..., p_business), which Citus delegates
    // to the node holding the business (migrations/0015).
    let app = TestApp::spawn().await;
    let client = app.sql().await;
    let tenant_scoped: BTreeSet<String> = client
        .query(
            "SELECT p.proname::text FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
                AND p.prosrc LIKE '%ontab_require_tenant()%'",
            &[],
        )
        .await
        .expect("functions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(tenant_scoped.contains("ontab_purchase"));
    let wrappers: BTreeSet<String> = client
        .query(
            "SELECT p.proname::text FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace AND p.proname ~ '^ontab_.*_for$'
                AND p.proargnames[p.pronargs] = 'p_business'
                AND p.proargtypes[p.pronargs - 1] = 'uuid'::regtype",
            &[],
        )
        .await
        .expect("functions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let called = called_functions(&ontab::db::sql::statements());
    let mut direct = Vec::new();
    for name in &called {
        if tenant_scoped.contains(name) && !wrappers.contains(&format!("{name}_for")) {
            direct.push(format!("{name} has no {name}_for"));
        }
    }
    // The use cases that move money or stock go through their wrapper.
    for use_case in [
        "ontab_purchase",
        "ontab_purchase_batch",
        "ontab_return",
        "ontab_pay",
        "ontab_write_off",
        "ontab_hold",
        "ontab_capture",
        "ontab_void",
        "ontab_expire_hold",
        "ontab_adjust_stock",
        "ontab_update_customer",
    ] {
        if called.contains(use_case) {
            direct.push(format!("the server calls {use_case} directly"));
        }
        assert!(
            called.contains(&format!("{use_case}_for")),
            "the server never calls {use_case}_for"
        );
    }
    assert!(direct.is_empty(), "{direct:#?}");
}

/// The `ontab_...(` function names the server's statements call.
fn called_functions(statements: &[ontab::db::sql::Statement]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for statement in statements {
        let sql = statement.sql;
        let mut rest = sql;
        while let Some(at) = rest.find("ontab_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if tail[end..].starts_with('(') {
                names.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

#[tokio::test]
async fn on_citus_every_table_and_use_case_is_placed_by_business() {
    if citus_url().is_none() {
        eprintln!("skipped: ONTAB_TEST_CITUS_URL names no Citus coordinator");
        return;
    }
    let app = TestApp::spawn().await;
    let client = app.sql().await;
    let tables = tenant_tables(&client).await;
    let placed = client
        .query(
            "SELECT logicalrelid::regclass::text, partmethod::text,
                    column_to_column_name(logicalrelid, partkey), colocationid
               FROM pg_dist_partition",
            &[],
        )
        .await
        .expect("placement");
    let mut colocation = BTreeSet::new();
    for table in &tables {
        let row = placed
            .iter()
            .find(|row| row.get::<_, String>(0) == *table)
            .unwrap_or_else(|| panic!("{table} is not distributed"));
        assert_eq!(row.get::<_, String>(1), "h", "{table} is hash-distributed");
        assert_eq!(
            row.get::<_, Option<String>>(2).as_deref(),
            Some("business_id"),
            "{table} is distributed by business_id"
        );
        colocation.insert(row.get::<_, i32>(3));
    }
    assert_eq!(colocation.len(), 1, "all tenant tables are colocated");
    for table in REFERENCE_TABLES {
        let row = placed
            .iter()
            .find(|row| row.get::<_, String>(0) == *table)
            .unwrap_or_else(|| panic!("{table} is not a reference table"));
        assert_eq!(row.get::<_, String>(1), "n", "{table} is a reference table");
    }
    let undelegated: Vec<String> = client
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace AND p.proname ~ '^ontab_.*_for$'
                AND NOT EXISTS (SELECT 1 FROM pg_dist_object o
                                 WHERE o.classid = 'pg_proc'::regclass AND o.objid = p.oid
                                   AND o.distribution_argument_index = p.pronargs - 1
                                   AND o.force_delegation)",
            &[],
        )
        .await
        .expect("functions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        undelegated.is_empty(),
        "use cases not delegated by business: {undelegated:?}"
    );
    // The statements only a coordinator can prepare, prepared there.
    for statement in ontab::db::sql::citus_only_statements() {
        client
            .prepare_typed(statement.sql, statement.params)
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", statement.full_name()));
    }
}

#[tokio::test]
async fn on_citus_a_purchase_refused_and_replayed_answers_as_on_one_database() {
    if citus_url().is_none() {
        eprintln!("skipped: ONTAB_TEST_CITUS_URL names no Citus coordinator");
        return;
    }
    // The rest of the suite covers the contract; here, the one path every
    // sale takes, end to end, with its refusals, on the cluster.
    let app = TestApp::spawn().await;
    let shop = app.business("citus shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 300, 5).await;
    let body = serde_json::json!({
        "customer_id": customer,
        "items": [{"product_id": product, "quantity": 2}]
    });
    let first = app
        .post_once("/v1/purchases", &shop.key, "citus-1", body.clone())
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let replay = app
        .post_once("/v1/purchases", &shop.key, "citus-1", body.clone())
        .await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.body, first.body, "a replay answers the first answer");
    let over = app
        .post(
            "/v1/purchases",
            &shop.key,
            serde_json::json!({
                "customer_id": customer,
                "items": [{"product_id": product, "quantity": 4}]
            }),
        )
        .await;
    assert_eq!(over.status, 409);
    assert_eq!(over.code(), "insufficient_stock", "{over:?}");
    let other = app.business("another shop").await;
    let foreign = app.post("/v1/purchases", &other.key, body).await;
    assert_eq!(foreign.status, 404, "{foreign:?}");
    app.assert_audit_clean().await;
}

/// A real shard move, between the numberings of the sequencer: each
/// worker draws event positions from its own range (group g from g << 48),
/// so events written after a move to a worker of a lower group have lower
/// positions than those written before it. The feed must still be in
/// commit order (migrations/0021). The server numbers nothing here; the
/// test numbers, as the sequencer does, before and after the move.
#[tokio::test]
async fn on_citus_events_keep_commit_order_across_a_shard_move() {
    if citus_url().is_none() {
        eprintln!("skipped: ONTAB_TEST_CITUS_URL names no Citus coordinator");
        return;
    }
    let app = TestApp::spawn_without_sequencer().await;
    let shop = app.business("moving shop").await;
    let first = app.customer(&shop, 0).await;
    let second = app.customer(&shop, 0).await;
    let mut sql = app.sql().await;
    let workers: Vec<(String, i32, i32)> = sql
        .query(
            "SELECT nodename, nodeport, groupid FROM pg_dist_node
              WHERE groupid <> 0 AND noderole = 'primary' ORDER BY groupid",
            &[],
        )
        .await
        .expect("workers")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert!(workers.len() >= 2, "a move needs two workers: {workers:?}");
    let (low, high) = (workers[0].clone(), workers[workers.len() - 1].clone());
    let shard: i64 = sql
        .query_one(
            "SELECT get_shard_id_for_distribution_column('events', $1::uuid)",
            &[&shop.id],
        )
        .await
        .expect("the business's shard")
        .get(0);
    let group_of_shard = async |sql: &tokio_postgres::Client| -> i32 {
        sql.query_one(
            "SELECT groupid FROM pg_dist_placement WHERE shardid = $1",
            &[&shard],
        )
        .await
        .expect("placement")
        .get(0)
    };
    let move_to =
        async |sql: &tokio_postgres::Client, from: &(String, i32, i32), to: &(String, i32, i32)| {
            sql.execute(
                "SELECT citus_move_shard_placement($1, $2, $3, $4, $5,
                                               shard_transfer_mode => 'block_writes')",
                &[&shard, &from.0, &from.1, &to.0, &to.1],
            )
            .await
            .expect("the shard group moves");
        };
    if group_of_shard(&sql).await != high.2 {
        move_to(&sql, &low, &high).await;
    }
    assert_eq!(group_of_shard(&sql).await, high.2);

    let number = async |sql: &mut tokio_postgres::Client| {
        let tx = sql.transaction().await.expect("begin");
        as_tenant(&tx, shop.id).await;
        tx.query(
            "SELECT * FROM ontab_sequence_events_for(1000, $1)",
            &[&shop.id],
        )
        .await
        .expect("numbering");
        tx.commit().await.expect("numbered");
    };
    let rename = async |customer: Uuid, name: &str| {
        let renamed = app
            .patch(
                &format!("/v1/customers/{customer}"),
                &shop.key,
                json!({ "name": name }),
            )
            .await;
        assert_eq!(renamed.status, 200, "{renamed:?}");
    };
    rename(first, "Numbered on the high group").await;
    number(&mut sql).await;
    let numbered_through: i64 = sql
        .query_one(
            "SELECT last_sequence FROM event_sequences WHERE business_id = $1",
            &[&shop.id],
        )
        .await
        .expect("counter")
        .get(0);

    rename(first, "Before the move").await;
    move_to(&sql, &high, &low).await;
    assert_eq!(group_of_shard(&sql).await, low.2);
    rename(second, "After the move").await;
    let groups: Vec<i64> = sql
        .query(
            "SELECT position >> 48 FROM events
              WHERE business_id = $1 AND sequence IS NULL ORDER BY position",
            &[&shop.id],
        )
        .await
        .expect("unnumbered")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        groups,
        [i64::from(low.2), i64::from(high.2)],
        "the event after the move has the lower position"
    );

    number(&mut sql).await;
    let feed = app
        .get(
            &format!("/v1/events?after={numbered_through}&limit=200"),
            &shop.key,
        )
        .await;
    assert_eq!(feed.status, 200, "{feed:?}");
    let names: Vec<&str> = feed.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|event| event["data"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Before the move", "After the move"], "commit order");
    app.assert_audit_clean().await;
}
