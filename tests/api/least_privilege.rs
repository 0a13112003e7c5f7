//! `serve` at least privilege (issue 11, item 5): its pool logs in as a
//! role that is `ontab_app` and nothing else, so no SQL the server runs can
//! RESET ROLE into anything more; a login that is more is a loud warning,
//! and a refusal in production mode; a login that may not migrate checks
//! the schema instead and refuses one that is not ready. The private
//! PostgreSQL does the same by itself.

use std::process::Stdio;
use std::time::Duration;

use ontab::db::parse_url;
use ontab::db::tls::ConnectOptions;
use ontab::embedded_pg::EmbeddedPostgres;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::helpers::{
    SERVER_ROLE, TestApp, as_server_role, connection_string, private_pg_dir, serve_config,
};

async fn connect(options: &ConnectOptions) -> Client {
    let (client, connection) = options.connect().await.expect("connects");
    tokio::spawn(connection);
    client
}

/// This test's database as the harness's superuser.
fn owner_of(app: &TestApp) -> ConnectOptions {
    parse_url(&app.database_url()).expect("the harness's connection string parses")
}

/// The users that the sessions of database `db_name` logged in as, but
/// `watcher`'s own.
async fn logins(watcher: &Client, db_name: &str) -> Vec<String> {
    watcher
        .query(
            // Not Citus's own sessions on a coordinator (its maintenance
            // daemon's connections name themselves citus_*).
            "SELECT DISTINCT usename::text FROM pg_stat_activity
              WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                AND application_name NOT LIKE 'citus\\_%'
              ORDER BY 1",
            &[&db_name],
        )
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Asserts that, within 5 s, every session of `db_name` but `watcher`'s
/// is `role`'s (a setup session that just closed may take a moment to go).
async fn assert_only_logins_of(watcher: &Client, db_name: &str, role: &str) {
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen = logins(watcher, db_name).await;
        if seen == [role] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the sessions of {db_name} log in as {seen:?}, not {role} alone");
}

/// Asserts that `role` is `ontab_app` and nothing more, as a session of it
/// finds after RESET ROLE: no superuser, no BYPASSRLS, no other role to
/// become, no direct write of stock or history.
async fn assert_ontab_app_alone(session: &Client, role: &str) {
    session
        .batch_execute("SET ROLE ontab_app; RESET ROLE")
        .await
        .expect("the login may become ontab_app, and return");
    let me = session
        .query_one(
            "SELECT current_user::text, rolsuper, rolbypassrls, rolcreaterole,
                    ARRAY(SELECT m.rolname::text FROM pg_roles m
                           WHERE pg_has_role(current_user, m.oid, 'MEMBER') AND m.rolname <> current_user
                           ORDER BY 1)
               FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .expect("who am I");
    assert_eq!(me.get::<_, String>(0), role);
    assert!(!me.get::<_, bool>(1), "{role} is a superuser");
    assert!(!me.get::<_, bool>(2), "{role} has BYPASSRLS");
    assert!(!me.get::<_, bool>(3), "{role} has CREATEROLE");
    assert_eq!(me.get::<_, Vec<String>>(4), ["ontab_app"]);
    for sql in [
        "SET ROLE postgres",
        "SET ROLE ontab_writer",
        "SET ROLE ontab_system",
        "SET ROLE ontab_recorder",
        "SET ROLE ontab_reserver",
        "UPDATE products SET reserved = 0",
        "DELETE FROM pending_holds",
        "UPDATE products SET stock = stock + 1",
        "DELETE FROM credit_ledger",
        "ALTER TABLE customers NO FORCE ROW LEVEL SECURITY",
        // A look-alike of a table would hide it from the guards (0028).
        "CREATE TEMP TABLE customers (id int)",
        "CREATE SCHEMA decoy",
    ] {
        let error = session
            .batch_execute(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("`{sql}` was allowed to {role}"));
        let code = error.as_db_error().map(|db| db.code().clone());
        assert!(
            matches!(code, Some(c) if c == SqlState::INSUFFICIENT_PRIVILEGE),
            "`{sql}`: {error:?}"
        );
    }
}

#[tokio::test]
async fn every_session_of_a_running_server_is_a_login_that_cannot_leave_ontab_app() {
    let app = TestApp::spawn().await;
    // Work of every kind, so that the pool has its sessions open.
    let shop = app.business("Shop").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 100, 5).await;
    assert_eq!(
        app.purchase(&shop, customer, &[(product, 1)]).await.status,
        201
    );

    let watcher = app.sql().await;
    assert_only_logins_of(&watcher, app.db_name(), SERVER_ROLE).await;
    // What any SQL the server runs could do: RESET ROLE lands here.
    let server_login = connect(&as_server_role(&owner_of(&app))).await;
    assert_ontab_app_alone(&server_login, SERVER_ROLE).await;
    let product_now = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(product_now.body["stock"], 4, "nothing was written");
}

/// Runs `ontab serve` with `env` until it listens (then stops it) or exits;
/// answers whether it listened and its stderr.
async fn run_serve(env: &[(&str, String)], args: &[&str]) -> (bool, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ontab"));
    command
        .arg("serve")
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("ONTAB_APP_DATABASE_URL")
        .env_remove("ONTAB_ENV")
        .env_remove("ONTAB_LOG_FORMAT")
        .env("ONTAB_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("ontab serve starts");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let listened = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("ontab listening on ") {
                return true;
            }
        }
        false
    })
    .await
    .expect("ontab serve neither listened nor stopped within 60 s");
    if listened {
        child.start_kill().expect("stop ontab serve");
    }
    let exit = child.wait().await.expect("exit status");
    assert!(
        listened || !exit.success(),
        "stopped without serving: {exit:?}"
    );
    (listened, stderr.await.expect("stderr read"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_as_a_superuser_warns_why_and_refuses_in_production_mode() {
    let app = TestApp::spawn().await;
    let superuser = [("DATABASE_URL", app.database_url())];

    let (listened, stderr) = run_serve(&superuser, &[]).await;
    assert!(listened, "{stderr}");
    let warning = stderr
        .lines()
        .find(|line| line.contains("WARN") && line.contains("CAN DO MORE THAN ontab_app"))
        .unwrap_or_else(|| panic!("no warning about the superuser pool:\n{stderr}"));
    for says in [
        "`postgres` is a superuser",
        "RESET ROLE",
        "IN ROLE ontab_app",
        "--app-database-url",
        "ONTAB_APP_DATABASE_URL",
        "`ontab migrate`",
    ] {
        assert!(warning.contains(says), "`{says}` not in: {warning}");
    }

    for (env, args) in [
        (vec![], vec!["--production"]),
        (vec![("ONTAB_ENV", "production".to_owned())], vec![]),
    ] {
        let mut env = env;
        env.extend(superuser.iter().cloned());
        let (listened, stderr) = run_serve(&env, &args).await;
        assert!(!listened, "served in production mode as a superuser");
        assert!(
            stderr.contains("refusing to start in production mode")
                && stderr.contains("`postgres` is a superuser")
                && stderr.contains("--app-database-url"),
            "{stderr}"
        );
    }

    // The same server, given a login that is ontab_app alone, starts in
    // production mode without a word of warning.
    let (listened, stderr) = run_serve(
        &[
            ("DATABASE_URL", app.database_url()),
            (
                "ONTAB_APP_DATABASE_URL",
                connection_string(&as_server_role(&owner_of(&app))),
            ),
            ("ONTAB_ENV", "production".to_owned()),
        ],
        &[],
    )
    .await;
    assert!(listened, "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
}

/// A login role of its own (cluster-wide: dropped at the end).
struct Role {
    admin: ConnectOptions,
    name: String,
}

impl Role {
    async fn create(app: &TestApp, attributes: &str) -> Self {
        let role = Self {
            admin: owner_of(app),
            name: format!("ontab_test_login_{}", Uuid::new_v4().simple()),
        };
        app.sql()
            .await
            .batch_execute(&format!(
                "CREATE ROLE {} LOGIN {attributes} IN ROLE ontab_app",
                role.name
            ))
            .await
            .expect("create a login role");
        role
    }

    fn options(&self) -> ConnectOptions {
        let mut options = self.admin.clone();
        options.config.user(&self.name);
        options
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let statement = format!("DROP ROLE IF EXISTS {}", self.name);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = admin.connect().await.ok()?;
                tokio::spawn(connection);
                client.batch_execute(&statement).await.ok()
            })
        })
        .join();
    }
}

/// `server::build` with only the app's login `app_url`.
async fn build_with_app_login(
    app_url: String,
    production: bool,
) -> anyhow::Result<ontab::server::Server> {
    let mut config = serve_config();
    config.database.database_url = None;
    config.app_database_url = Some(app_url);
    config.production = production;
    ontab::server::build(&config).await
}

/// Asserts that serve, with only the app login `url`, refuses to start in
/// production mode and starts otherwise (with a warning); answers the
/// refusal, for the test to check its reason. `what` names the login.
async fn refused_in_production_mode_only(url: String, what: &str) -> String {
    let refused = build_with_app_login(url.clone(), true)
        .await
        .err()
        .map(|error| format!("{error:#}"))
        .unwrap_or_else(|| panic!("served {what} in production mode"));
    assert!(
        refused.contains("refusing to start in production mode"),
        "{refused}"
    );
    let served = build_with_app_login(url, false).await;
    assert!(served.is_ok(), "{what}: {:?}", served.err());
    refused
}

#[tokio::test]
async fn a_login_with_bypassrls_is_refused_in_production_mode_and_served_with_a_warning_otherwise()
{
    let app = TestApp::spawn().await;
    let bypass = Role::create(&app, "BYPASSRLS").await;
    let url = connection_string(&bypass.options());

    let refused = refused_in_production_mode_only(url, "a BYPASSRLS login").await;
    assert!(
        refused.contains(&format!("`{}` has BYPASSRLS", bypass.name)),
        "{refused}"
    );
}

/// A database whose PUBLIC kept TEMPORARY (a migrator that did not own
/// it could not revoke it, or someone granted it again): the login may
/// create temporary tables that shadow ontab's, so serve names that and
/// refuses to start in production mode.
#[tokio::test]
async fn a_login_that_may_create_temporary_tables_is_refused_in_production_mode() {
    let app = TestApp::spawn().await;
    let plain = Role::create(&app, "").await;
    let url = connection_string(&plain.options());
    assert!(
        build_with_app_login(url.clone(), true).await.is_ok(),
        "migrated, the database gives no login TEMPORARY"
    );

    app.grant_public_temporary().await;
    let refused =
        refused_in_production_mode_only(url, "a login that may create temporary tables").await;
    assert!(
        refused.contains(&format!("`{}` may create temporary tables", plain.name)),
        "{refused}"
    );
}

#[tokio::test]
async fn serve_with_only_the_app_login_migrates_nothing_and_refuses_a_schema_not_ready() {
    let app = TestApp::spawn().await;
    let app_url = connection_string(&as_server_role(&owner_of(&app)));
    let sql = app.sql().await;
    sql.batch_execute("DELETE FROM ontab_migrations WHERE version = 4")
        .await
        .expect("pretend the last migration is pending");

    let refused = build_with_app_login(app_url, false)
        .await
        .err()
        .map(|error| format!("{error:#}"))
        .unwrap_or_else(|| panic!("served a database with a pending migration"));
    assert!(
        refused.contains("lacks migration 0004_use_cases"),
        "{refused}"
    );
    assert!(
        refused.contains("run `ontab migrate` with the owner's DATABASE_URL first"),
        "{refused}"
    );
    assert!(!refused.contains('\n'), "not one line: {refused}");
    let pending: i64 = sql
        .query_one(
            "SELECT count(*) FROM ontab_migrations WHERE version = 4",
            &[],
        )
        .await
        .expect("ontab_migrations")
        .get(0);
    assert_eq!(pending, 0, "serve migrated");

    // A database nobody migrated yet.
    let empty = format!("ontab_test_empty_{}", Uuid::new_v4().simple());
    sql.batch_execute(&format!("CREATE DATABASE {empty}"))
        .await
        .expect("create an empty database");
    let mut empty_login = as_server_role(&owner_of(&app));
    empty_login.config.dbname(&empty);
    let refused = build_with_app_login(connection_string(&empty_login), false)
        .await
        .err()
        .map(|error| format!("{error:#}"));
    sql.batch_execute(&format!("DROP DATABASE {empty} WITH (FORCE)"))
        .await
        .expect("drop the empty database");
    let refused = refused.unwrap_or_else(|| panic!("served a database with no schema"));
    assert!(refused.contains("no ontab schema yet"), "{refused}");
    assert!(
        refused.contains("run `ontab migrate` with the owner's DATABASE_URL first"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_postgresql_is_served_by_a_login_that_is_ontab_app_alone() {
    let root = private_pg_dir(&format!("ontab-least-{}", Uuid::new_v4().simple()));
    let mut config = serve_config();
    config.database.database_url = None;
    config.app_database_url = None;
    config.database.data_dir = Some(root.clone());
    let server = ontab::server::build(&config)
        .await
        .expect("serve starts its private PostgreSQL");
    let base = format!("http://{}", server.local_addr().expect("bound"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let ready = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);

    // The cluster is already running: this only finds it (and leaves it
    // to the server to stop).
    let cluster = EmbeddedPostgres::start(&root, "ontab")
        .await
        .expect("the private PostgreSQL runs");
    let superuser = connect(&parse_url(&cluster.connection_string()).expect("socket URL")).await;
    assert_only_logins_of(&superuser, "ontab", "ontab_server").await;
    let mut server_login = parse_url(&cluster.connection_string()).expect("socket URL");
    server_login.config.user("ontab_server");
    assert_ontab_app_alone(&connect(&server_login).await, "ontab_server").await;

    drop(superuser);
    let _ = stop.send(());
    running
        .await
        .expect("server task")
        .expect("serve stops and stops its PostgreSQL");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&root);
}
