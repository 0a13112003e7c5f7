//! The migrator's rules: a database migrated by another ontab is refused
//! before anything is applied, and the schema migrates as the database
//! owner without superuser rights.

use ontab::db::migrate;
use tokio_postgres::{Client, Config, NoTls};
use uuid::Uuid;

use crate::helpers::{TestApp, options_of};
use crate::privileges::ServerLogin;

/// This test's database, reached as the superuser that migrated it.
fn config_of(app: &TestApp) -> Config {
    app.database_url()
        .parse()
        .expect("the harness's connection string parses")
}

async fn versions(client: &Client) -> Vec<i32> {
    client
        .query("SELECT version FROM ontab_migrations ORDER BY version", &[])
        .await
        .expect("ontab_migrations readable")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The message of a refused migration run, checked to be one line.
async fn refusal(config: &Config) -> String {
    match migrate::run_on(&options_of(config)).await {
        Ok(applied) => panic!("migrated ({applied:?}) where it should have refused"),
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains('\n'), "not one line: {message}");
            message
        }
    }
}

#[tokio::test]
async fn an_up_to_date_database_migrates_to_nothing() {
    let app = TestApp::spawn().await;
    let applied = migrate::run_on(&options_of(&config_of(&app)))
        .await
        .expect("the template's migrations are this binary's");
    assert_eq!(applied, Vec::<i32>::new());
}

/// PUBLIC's TEMPORARY on the database (migrations/0028) is revoked by
/// every run of the migrator, and only its owner may revoke it: a migrator
/// that may create in the schema but does not own the database still
/// migrates (REVOKE only warns), leaves the privilege, and `serve` names
/// it (least_privilege.rs); the owner's next run revokes it.
#[tokio::test]
async fn temporary_is_revoked_by_the_owners_run_and_left_by_a_migrator_that_is_not_the_owner() {
    if crate::helpers::skipped_on_citus(
        "on Citus every run of the migrator also places the tables (src/db/citus.rs), \
         which only their owner may: a migrator that owns nothing cannot run there",
    ) {
        return;
    }
    let app = TestApp::spawn().await;
    let sql = app.sql().await;
    let temporary = || async {
        sql.query_one(
            "SELECT has_database_privilege('ontab_app', current_database(), 'TEMPORARY')",
            &[],
        )
        .await
        .expect("privilege query")
        .get::<_, bool>(0)
    };
    assert!(!temporary().await, "the harness migrated its copy");

    app.grant_public_temporary().await;
    let migrator = ServerLogin::create(&app).await;
    sql.batch_execute(&format!(
        "GRANT CREATE ON SCHEMA public TO {}",
        migrator.role
    ))
    .await
    .expect("let it create in the schema");
    let applied = migrate::run_on(&options_of(&migrator.config())).await;
    sql.batch_execute(&format!(
        "REVOKE CREATE ON SCHEMA public FROM {}",
        migrator.role
    ))
    .await
    .expect("revoke it again, so that the role can be dropped");
    assert_eq!(applied.expect("a non-owner migrates"), Vec::<i32>::new());
    assert!(temporary().await, "only the owner may revoke it");

    let applied = migrate::run_on(&options_of(&config_of(&app)))
        .await
        .expect("the owner migrates");
    assert_eq!(applied, Vec::<i32>::new());
    assert!(!temporary().await, "the owner's run revoked it");
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_ontab_is_refused_at_start() {
    let app = TestApp::spawn().await;
    let sql = app.sql().await;
    let before = versions(&sql).await;
    sql.batch_execute(
        "INSERT INTO ontab_migrations (version, name, sha256)
         VALUES (9001, 'from_the_future', sha256('whatever'::bytea))",
    )
    .await
    .expect("record a migration this binary does not have");

    let message = refusal(&config_of(&app)).await;
    assert!(message.contains("9001_from_the_future"), "{message}");
    assert!(message.contains("does not know"), "{message}");
    let mut expected = before;
    expected.push(9001);
    assert_eq!(versions(&sql).await, expected, "nothing was applied");
}

#[tokio::test]
async fn a_database_whose_applied_migration_differs_is_refused_at_start() {
    let app = TestApp::spawn().await;
    let sql = app.sql().await;
    sql.batch_execute(
        "UPDATE ontab_migrations SET sha256 = sha256('another file'::bytea) WHERE version = 2",
    )
    .await
    .expect("pretend migration 2 was applied from another file");

    let message = refusal(&config_of(&app)).await;
    assert!(message.contains("migration 0002_guards"), "{message}");
    assert!(message.contains("differs"), "{message}");
}

/// A login role with CREATEROLE that owns an empty database, dropped (with
/// its database) when the test ends: roles are cluster-wide.
struct DatabaseOwner {
    admin: Config,
    role: String,
    database: String,
}

impl DatabaseOwner {
    async fn create(app: &TestApp) -> Self {
        let admin = config_of(app);
        let suffix = Uuid::new_v4().simple().to_string();
        let owner = Self {
            admin,
            role: format!("ontab_test_owner_{suffix}"),
            database: format!("ontab_test_owned_{suffix}"),
        };
        let sql = app.sql().await;
        sql.batch_execute(&format!(
            "CREATE ROLE {} LOGIN NOSUPERUSER CREATEROLE NOBYPASSRLS",
            owner.role
        ))
        .await
        .expect("create the owner role");
        sql.batch_execute(&format!(
            "CREATE DATABASE {} OWNER {}",
            owner.database, owner.role
        ))
        .await
        .expect("create its database");
        owner
    }

    /// Its database, as itself.
    fn config(&self) -> Config {
        let mut config = self.admin.clone();
        config.user(&self.role).dbname(&self.database);
        config
    }
}

impl Drop for DatabaseOwner {
    fn drop(&mut self) {
        let mut admin = self.admin.clone();
        admin.dbname("postgres");
        // Two statements sent apart: DROP DATABASE refuses to run in the
        // implicit transaction of a multi-statement query.
        let statements = [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
            format!("DROP ROLE IF EXISTS {}", self.role),
        ];
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = admin.connect(NoTls).await.ok()?;
                tokio::spawn(connection);
                for statement in &statements {
                    client.batch_execute(statement).await.ok()?;
                }
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!(
                "warning: could not drop {} and role {}",
                self.database, self.role
            );
        }
    }
}

#[tokio::test]
async fn a_database_owner_without_superuser_migrates_and_serves_a_purchase() {
    let app = TestApp::spawn().await;
    let owner = DatabaseOwner::create(&app).await;

    let applied = migrate::run_on(&options_of(&owner.config()))
        .await
        .expect("the database owner with CREATEROLE can migrate");
    assert_eq!(
        applied,
        vec![
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
            25, 26, 27, 28, 29, 30, 31, 32
        ]
    );

    let (sql, connection) = owner.config().connect(NoTls).await.expect("connect");
    tokio::spawn(connection);
    let owners: Vec<(String, String)> = sql
        .query(
            "SELECT p.proname::text, pg_get_userbyid(p.proowner)::text FROM pg_proc p
              WHERE p.prosecdef ORDER BY 1",
            &[],
        )
        .await
        .expect("catalog")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    for (function, owner_role) in &owners {
        assert!(
            owner_role.starts_with("ontab_") && !owner_role.starts_with("ontab_test_owner_"),
            "{function} is owned by {owner_role}, not by an ontab role"
        );
    }
    let creators: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_roles r
              WHERE r.rolname LIKE 'ontab\\_%' AND r.rolname NOT LIKE 'ontab\\_test\\_%'
                AND has_schema_privilege(r.oid, 'public', 'CREATE')",
            &[],
        )
        .await
        .expect("privilege query")
        .get(0);
    assert_eq!(creators, 0, "no ontab role keeps CREATE on schema public");
    let temporary: bool = sql
        .query_one(
            "SELECT has_database_privilege('ontab_app', current_database(), 'TEMPORARY')",
            &[],
        )
        .await
        .expect("privilege query")
        .get(0);
    assert!(!temporary, "the owner revoked PUBLIC's TEMPORARY");

    // The server's path: the owner becomes ontab_app for one tenant, as
    // src/db/tx.rs does, and purchases through the function.
    let shop = Uuid::new_v4();
    let customer = Uuid::new_v4();
    let product = Uuid::new_v4();
    sql.batch_execute(&format!(
        "BEGIN;
         SELECT set_config('role', 'ontab_app', true), set_config('ontab.business_id', '{shop}', true);
         INSERT INTO businesses (id, name, currency) VALUES ('{shop}', 'Shop', 'EUR');
         INSERT INTO customers (business_id, id, name, credit_limit) VALUES ('{shop}', '{customer}', 'C', 1000);
         INSERT INTO products (business_id, id, name, price, stock, initial_stock)
              VALUES ('{shop}', '{product}', 'P', 300, 5, 5);
         COMMIT;"
    ))
    .await
    .expect("ontab_app creates a business, a customer and a product");
    sql.batch_execute(&format!(
        "SET ROLE ontab_app; SELECT set_config('ontab.business_id', '{shop}', false)"
    ))
    .await
    .expect("become ontab_app for the shop");
    let purchase: serde_json::Value = sql
        .query_one(
            "SELECT ontab_purchase($1, $2, $3, $4, $5)",
            &[
                &Uuid::new_v4(),
                &Uuid::new_v4(),
                &customer,
                &vec![product],
                &vec![2_i64],
            ],
        )
        .await
        .expect("purchase runs")
        .get(0);
    assert_eq!(purchase["order"]["total"], 600, "{purchase}");
}

#[tokio::test]
async fn a_server_logging_in_as_the_app_role_verifies_the_schema_it_may_not_migrate() {
    let app = TestApp::spawn().await;
    let login = ServerLogin::create(&app).await;
    let server = login.connect().await;

    migrate::verify(&server)
        .await
        .expect("the app role may check that the schema is this binary's");
    let refused = migrate::run_on(&options_of(&login.config()))
        .await
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(refused.contains("permission denied"), "{refused}");

    let sql = app.sql().await;
    sql.batch_execute("DELETE FROM ontab_migrations WHERE version = 4")
        .await
        .expect("pretend the last migration is pending");
    let pending = migrate::verify(&server)
        .await
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        pending.contains("lacks migration 0004_use_cases"),
        "{pending}"
    );
    sql.batch_execute(
        "INSERT INTO ontab_migrations (version, name, sha256)
         VALUES (9001, 'from_the_future', sha256('whatever'::bytea))",
    )
    .await
    .expect("record a migration this binary does not have");
    let unknown = migrate::verify(&server)
        .await
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(unknown.contains("9001_from_the_future"), "{unknown}");
}

/// A foreign key that deletes (or nulls) its referencing rows when the
/// referenced one goes runs a lookup by the referencing columns for every
/// row deleted: without an index leading with those columns, each is a
/// walk of the referencing table, and pruning or the audit turns
/// quadratic (migrations/0012 found one). Keys whose referenced rows are
/// never deleted (orders, products: immutable history) need none.
#[tokio::test]
async fn every_cascading_foreign_key_is_backed_by_an_index() {
    let app = TestApp::spawn().await;
    let sql = app.sql().await;
    let unindexed: Vec<String> = sql
        .query(
            "SELECT format('%s.%s', c.conrelid::regclass, c.conname)
               FROM pg_constraint c
              WHERE c.contype = 'f' AND c.confdeltype IN ('c', 'n', 'd')
                AND NOT EXISTS (
                      SELECT 1 FROM pg_index i
                       WHERE i.indrelid = c.conrelid
                         AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                         AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
              ORDER BY 1",
            &[],
        )
        .await
        .expect("the catalog is readable")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(unindexed, Vec::<String>::new());
    let cascading: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confdeltype = 'c'",
            &[],
        )
        .await
        .expect("the catalog is readable")
        .get(0);
    assert!(
        cascading >= 3,
        "the check saw the schema's cascades ({cascading})"
    );
}
