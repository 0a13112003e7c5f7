//! The test harness: the real app on port 0 over a real PostgreSQL, a fresh
//! database per test (cloned from a migrated template, dropped afterwards).
//!
//! PostgreSQL comes from ONTAB_TEST_DATABASE_URL (a superuser connection),
//! else 127.0.0.1:5432 as user postgres when it answers, else a private
//! cluster under target/tmp that the harness starts (and leaves running for
//! the next run; `.ci/run` stops it).
//!
//! The server under test logs in as [`SERVER_ROLE`], a member of
//! `ontab_app` and nothing else (created once per cluster), and is given
//! only that login (`--app-database-url`): so every test shows that `serve`
//! needs no more. The harness's own connection ([`TestApp::sql`]) is the
//! superuser, for setting up and inspecting.
//!
//! With ONTAB_TEST_CITUS_URL naming a database on a Citus coordinator
//! (superuser, extension created, workers added), every test database is
//! made there instead: created on the coordinator and on each of its
//! workers, with the extension and the nodes, then migrated by `ontab
//! migrate`'s own code, which distributes it (a distributed database cannot
//! be cloned from a template). See tests/api/citus.rs.
//!
//! With ONTAB_TEST_POOLER=host:port the app under test reaches its database
//! through that pooler (PgBouncer in transaction mode in CI) while the
//! harness itself talks to PostgreSQL directly; ONTAB_TEST_STATEMENTS=unnamed
//! selects the statement mode such a pooler needs.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use ontab::config::ServeConfig;
use ontab::db::tls::ConnectOptions;
use ontab::db::{StatementMode, migrate};
use ontab::embedded_pg::EmbeddedPostgres;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, GenericClient};
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The login role of every server the harness starts: a member of
/// `ontab_app` and nothing else, as migrations/0003 tells operators to make
/// one. The password matters only where the cluster asks for one.
pub const SERVER_ROLE: &str = "ontab_test_server";
const SERVER_PASSWORD: &str = "ontab-test-server";

/// Where test databases are created, and the template they are cloned from.
struct Cluster {
    admin: ConnectOptions,
    /// The template test databases are cloned from; `None` on Citus.
    template: Option<String>,
    /// On Citus, the workers (host, port) a test database is also made on.
    workers: Vec<(String, i32)>,
}

/// How many sessions of the test's database wait for a lock. On Citus the
/// waits are on the nodes, one per distributed transaction waiting.
pub fn lock_waiters_sql() -> &'static str {
    if citus_url().is_some() {
        "SELECT count(DISTINCT waiting_gpid) FROM citus_lock_waits"
    } else {
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'"
    }
}

/// True on a Citus coordinator, after saying why the calling test does not
/// run there: for a test whose fault is injected on the one node it
/// connects to.
pub fn skipped_on_citus(why: &str) -> bool {
    if citus_url().is_some() {
        eprintln!("skipped on Citus: {why}");
        return true;
    }
    false
}

/// The coordinator the Citus suite runs on, when ONTAB_TEST_CITUS_URL names
/// one.
pub fn citus_url() -> Option<String> {
    std::env::var("ONTAB_TEST_CITUS_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();

async fn cluster() -> &'static Cluster {
    CLUSTER
        .get_or_init(|| async {
            if let Some(url) = citus_url() {
                let admin = ontab::db::parse_url(&url)
                    .expect("ONTAB_TEST_CITUS_URL must be a valid connection string");
                let workers = connect(&admin)
                    .await
                    .query(
                        "SELECT nodename, nodeport FROM pg_dist_node
                          WHERE groupid <> 0 AND noderole = 'primary' ORDER BY nodeid",
                        &[],
                    )
                    .await
                    .expect("ONTAB_TEST_CITUS_URL names a Citus coordinator with workers")
                    .iter()
                    .map(|row| (row.get(0), row.get(1)))
                    .collect();
                // The server's role is made after each test database is
                // migrated (create_citus_database): on a new cluster,
                // `ontab_app` exists only once a migration made it.
                return Cluster {
                    admin,
                    template: None,
                    workers,
                };
            }
            let admin = admin_config().await;
            let template = ensure_template(&admin).await;
            ensure_server_role(&admin).await;
            Cluster {
                admin,
                template: Some(template),
                workers: Vec::new(),
            }
        })
        .await
}

async fn admin_config() -> ConnectOptions {
    if let Ok(url) = std::env::var("ONTAB_TEST_DATABASE_URL") {
        return ontab::db::parse_url(&url)
            .expect("ONTAB_TEST_DATABASE_URL must be a valid connection string");
    }
    let local = ontab::db::parse_url(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=2",
    )
    .expect("static connection string parses");
    if local.connect().await.is_ok() {
        return local;
    }
    let root = private_pg_dir("ontab-test-pg");
    let cluster = EmbeddedPostgres::start(&root, "postgres")
        .await
        .expect("no PostgreSQL at 127.0.0.1:5432 and the private one could not start");
    let config = ontab::db::parse_url(&cluster.connection_string_for("postgres"))
        .expect("own connection string parses");
    // Left running on purpose: other test processes and later runs reuse it.
    std::mem::forget(cluster);
    config
}

/// Where a test keeps a private PostgreSQL cluster: under target/tmp, or,
/// when the `postgres` user that runs it as root cannot reach that (a
/// checkout inside a 0700 directory), under the system temp directory, in
/// a folder named after this checkout's target dir. `.ci/run` stops
/// clusters in both places.
pub fn private_pg_dir(name: &str) -> std::path::PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    if ontab::embedded_pg::service_user_can_reach(target) {
        return target.join(name);
    }
    let checkout = hex::encode(Sha256::digest(target.as_os_str().as_encoded_bytes()));
    std::env::temp_dir()
        .join(format!("ontab-test-{}", &checkout[..12]))
        .join(name)
}

async fn connect(options: &ConnectOptions) -> Client {
    let (client, connection) = options.connect().await.expect("test database reachable");
    tokio::spawn(connection);
    client
}

/// A migrated database named after a hash of the migrations, created once
/// per cluster (an advisory lock keeps parallel test processes in line).
async fn ensure_template(admin: &ConnectOptions) -> String {
    let mut hash = Sha256::new();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations dir")
    {
        let path = entry.expect("readable migrations dir").path();
        hash.update(
            path.file_name()
                .map(|name| name.as_encoded_bytes())
                .unwrap_or_default(),
        );
        hash.update(std::fs::read(&path).expect("readable migration"));
    }
    let template = format!("ontab_tpl_{}", &hex::encode(hash.finalize())[..16]);
    let client = connect(admin).await;
    client
        .execute("SELECT pg_advisory_lock(7041726002)", &[])
        .await
        .expect("lock");
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .expect("catalog query")
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {template}"))
            .await
            .expect("create template");
        let mut options = admin.clone();
        options.config.dbname(&template);
        migrate::run_on(&options)
            .await
            .expect("migrations apply to the template");
    }
    client
        .execute("SELECT pg_advisory_unlock(7041726002)", &[])
        .await
        .expect("unlock");
    template
}

/// Creates [`SERVER_ROLE`] in `admin`'s cluster (whose migrations made
/// `ontab_app`) unless it exists; parallel test processes may race here.
async fn ensure_server_role(admin: &ConnectOptions) {
    connect(admin)
        .await
        .batch_execute(&format!(
            "DO $$
             BEGIN
                 BEGIN
                     CREATE ROLE {SERVER_ROLE} LOGIN PASSWORD '{SERVER_PASSWORD}' IN ROLE ontab_app;
                 EXCEPTION
                     WHEN duplicate_object OR unique_violation THEN NULL;
                 END;
                 IF NOT pg_has_role('{SERVER_ROLE}', 'ontab_app', 'MEMBER') THEN
                     GRANT ontab_app TO {SERVER_ROLE};
                 END IF;
             END
             $$"
        ))
        .await
        .expect("create the server's login role");
}

/// `options` logging in as [`SERVER_ROLE`] instead.
pub fn as_server_role(options: &ConnectOptions) -> ConnectOptions {
    let mut options = options.clone();
    options.config.user(SERVER_ROLE).password(SERVER_PASSWORD);
    options
}

/// The same database as `admin` names, reached through the pooler at
/// `host:port` with the same user.
fn through_pooler(pooler: &str, admin: &ConnectOptions, db_name: &str) -> ConnectOptions {
    let (host, port) = pooler
        .rsplit_once(':')
        .expect("ONTAB_TEST_POOLER is host:port");
    let mut config = Config::new();
    config
        .host(host)
        .port(port.parse().expect("ONTAB_TEST_POOLER port is a number"))
        .user(admin.config.get_user().unwrap_or("postgres"))
        .dbname(db_name);
    if let Some(password) = admin.config.get_password() {
        config.password(password);
    }
    ConnectOptions {
        config,
        tls: admin.tls.clone(),
    }
}

/// A response: status, headers and JSON body (Null when empty, a string
/// when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `code` of a problem+json answer, checking its shape on the way.
    pub fn code(&self) -> &str {
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        assert_eq!(
            content_type,
            Some("application/problem+json"),
            "not a problem: {self:?}"
        );
        for member in ["type", "title", "status", "detail", "code"] {
            assert!(
                self.body.get(member).is_some(),
                "problem without `{member}`: {self:?}"
            );
        }
        assert_eq!(
            self.body["status"], self.status,
            "status member disagrees: {self:?}"
        );
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn id(&self) -> Uuid {
        self.body["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .unwrap_or_else(|| panic!("no id in {self:?}"))
    }
}

/// Whether test servers group-commit purchases (the default, as `ontab
/// serve`); `ONTAB_TEST_BATCH=off` runs every purchase on its own, which CI
/// does in its second pass so both paths go through the whole suite.
pub fn batching() -> bool {
    std::env::var("ONTAB_TEST_BATCH").as_deref() != Ok("off")
}

/// A business created through the API, with its key.
#[derive(Debug, Clone)]
pub struct Business {
    pub id: Uuid,
    pub key: String,
}

/// Makes `client`'s transaction the server's: role ontab_app, `business`
/// the tenant, both until the transaction ends (as src/db/tx.rs does).
pub async fn as_tenant(client: &impl GenericClient, business: Uuid) {
    client
        .execute("SELECT set_config('role', 'ontab_app', true)", &[])
        .await
        .expect("become ontab_app");
    client
        .batch_execute(&format!("SET LOCAL ontab.business_id = '{business}'"))
        .await
        .expect("become the tenant");
}

/// Begins a transaction in which the session's tenant is also SET LOCAL:
/// a distributed PostgreSQL forwards only that to its nodes (and only as a
/// statement of its own), not a session's `set_config`.
pub async fn begin_as_session_tenant(client: &Client) {
    client.batch_execute("BEGIN").await.expect("begin");
    let tenant: Option<String> = client
        .query_one("SELECT current_setting('ontab.business_id', true)", &[])
        .await
        .expect("the session's tenant")
        .get(0);
    if let Some(tenant) = tenant.filter(|tenant| Uuid::parse_str(tenant).is_ok()) {
        client
            .batch_execute(&format!("SET LOCAL ontab.business_id = '{tenant}'"))
            .await
            .expect("the tenant, locally");
    }
}

/// `query_one` in a transaction of its own begun as
/// [`begin_as_session_tenant`], committed when it succeeds.
pub async fn query_one_as_session_tenant(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
    begin_as_session_tenant(client).await;
    match client.query_one(sql, params).await {
        Ok(row) => {
            client.batch_execute("COMMIT").await?;
            Ok(row)
        }
        Err(error) => {
            client.batch_execute("ROLLBACK").await.expect("rollback");
            Err(error)
        }
    }
}

/// Runs `sql` in a transaction of its own begun as
/// [`begin_as_session_tenant`], committing it when it succeeds (so a
/// deferred check's refusal is the answer); rolls back when it fails.
pub async fn in_session_tenant_tx(client: &Client, sql: &str) -> Result<(), tokio_postgres::Error> {
    begin_as_session_tenant(client).await;
    match client.batch_execute(sql).await {
        Ok(()) => client.batch_execute("COMMIT").await,
        Err(error) => {
            client.batch_execute("ROLLBACK").await.expect("rollback");
            Err(error)
        }
    }
}

/// Begins a transaction on `client` with the triggers off
/// (`session_replication_role = replica`, as the superuser): how a test
/// plants a state the guards would refuse. SET LOCAL, and as a statement
/// of its own, which is what a distributed PostgreSQL forwards to its
/// nodes (Citus resends the whole query string a SET LOCAL came in).
pub async fn triggers_off(client: &mut Client) -> tokio_postgres::Transaction<'_> {
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("SET LOCAL session_replication_role = replica")
        .await
        .expect("replica mode");
    tx
}

/// Makes `customer`'s ledger one entry with a zero balance and `lifetime`
/// purchases to date, with the triggers off: a state the API reaches only
/// after a thousand maximal purchases, and one the audit rightly calls a
/// broken chain.
pub async fn plant_lifetime_purchases(
    app: &TestApp,
    shop: &Business,
    customer: Uuid,
    lifetime: i64,
) {
    let mut client = app.sql().await;
    let tx = triggers_off(&mut client).await;
    tx.execute(
        "INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount,
                                    balance_after, purchases_to_date)
         VALUES ($1, $2, $3, 1, 'payment', -1, 0, $4)",
        &[&shop.id, &Uuid::now_v7(), &customer, &lifetime],
    )
    .await
    .expect("planted ledger head");
    tx.commit().await.expect("commit the planted head");
}

/// Takes `table`'s row `id` FOR UPDATE in `client`'s open transaction.
/// Its business is read first: Citus locks a row only through a statement
/// that names the business (the shard), and so does this, on either.
pub async fn lock_for_update(client: &impl GenericClient, table: &str, id: Uuid) {
    let business: Uuid = client
        .query_one(
            &format!("SELECT business_id FROM {table} WHERE id = $1"),
            &[&id],
        )
        .await
        .unwrap_or_else(|error| panic!("{table} {id}: {error}"))
        .get(0);
    client
        .execute(
            &format!("SELECT 1 FROM {table} WHERE business_id = $1 AND id = $2 FOR UPDATE"),
            &[&business, &id],
        )
        .await
        .unwrap_or_else(|error| panic!("lock {table} {id}: {error}"));
}

/// A node's error as Citus passes it on names the shard (`orders_102008`)
/// where one PostgreSQL names the table: on Citus, the message with shard
/// suffixes taken off, so a test can look for the table's name in either;
/// elsewhere the message as it is.
pub fn without_shard_suffixes(message: &str) -> String {
    if citus_url().is_none() {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find('_') {
        let digits = rest[at + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        let ends_word = !rest[at + 1 + digits..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        if digits >= 6 && ends_word {
            rest = &rest[at + 1 + digits..];
        } else {
            out.push('_');
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// The running app and its private database.
pub struct TestApp {
    pub base_url: String,
    pub http: reqwest::Client,
    db_config: ConnectOptions,
    db_name: String,
    /// How the app was started, so another instance can serve the same
    /// database (`another_instance`).
    launch: Launch,
    /// Only the instance that created the database drops it.
    owns_database: bool,
}

/// What a server instance is started with.
#[derive(Clone)]
struct Launch {
    app_config: ConnectOptions,
    statements: StatementMode,
    pool_size: usize,
    pool_wait: Duration,
    request_timeout: Duration,
    statement_timeout: Duration,
    /// `--hold-sweep-interval`; `None`: serve's default.
    hold_sweep_interval: Option<Duration>,
    /// `--overdue-scan-interval`; `None`: serve's default.
    overdue_scan_interval: Option<Duration>,
    /// Webhook and NATS settings; `None`: serve's defaults.
    webhooks: Option<WebhookLaunch>,
    /// `--event-sequence-interval`, and the overdue scan's and pruning's
    /// (`Some(0)`: this instance does none of the events' background
    /// work); `None`: serve's defaults.
    event_sequence_interval: Option<Duration>,
}

/// How a test server delivers events.
#[derive(Clone, Debug)]
pub struct WebhookLaunch {
    /// `--webhook-allow-private`: loopback receivers need it.
    pub allow_private: bool,
    /// `--webhook-retry-schedule`; `None`: the contract's.
    pub retry_schedule: Option<Vec<Duration>>,
    /// `--webhook-timeout`.
    pub timeout: Duration,
    /// `--webhook-lease-margin`.
    pub lease_margin: Duration,
    /// `--nats-url`.
    pub nats_url: Option<String>,
    /// `--webhook-concurrency`; 0: this server delivers nothing.
    pub concurrency: usize,
}

impl Default for WebhookLaunch {
    /// Loopback receivers allowed, the real schedule and timeout, a short
    /// poll.
    fn default() -> Self {
        Self {
            allow_private: true,
            retry_schedule: None,
            timeout: Duration::from_secs(15),
            lease_margin: Duration::from_secs(15),
            nats_url: None,
            concurrency: 64,
        }
    }
}

/// `ontab serve`'s flags, to read its defaults exactly as it ships.
#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    config: ServeConfig,
}

/// A libpq key=value connection string for `options` (its sslmode
/// included; a CA file, if any, is the harness's own business).
pub fn connection_string(options: &ConnectOptions) -> String {
    format!(
        "{} sslmode={}",
        plain_connection_string(&options.config),
        options.sslmode()
    )
}

/// The same database as `config` names, with the TLS settings of a URL
/// that gives none (`prefer`).
pub fn options_of(config: &Config) -> ConnectOptions {
    ontab::db::parse_url(&plain_connection_string(config)).expect("own connection string parses")
}

fn plain_connection_string(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let password = config
        .get_password()
        .map(|password| format!(" password='{}'", String::from_utf8_lossy(password)))
        .unwrap_or_default();
    format!(
        "host='{host}' port={port} user={} dbname={}{password}",
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("postgres")
    )
}

impl Launch {
    /// A server over `app_config` on port 0, built by `server::build` as
    /// `ontab serve` builds it (its defaults, group commit included, unless
    /// ONTAB_TEST_BATCH=off), given only the app's login, as production
    /// runs it once `ontab migrate` has run; answers its base URL.
    async fn serve(&self) -> String {
        serve(None, Some(connection_string(&self.app_config)), |config| {
            config.request_timeout = self.request_timeout;
            config.statement_timeout = Some(self.statement_timeout);
            config.database.pool_size = self.pool_size;
            config.database.pool_timeout = self.pool_wait;
            config.database.statements = self.statements;
            if let Some(every) = self.hold_sweep_interval {
                config.hold_sweep_interval = every;
            }
            if let Some(every) = self.overdue_scan_interval {
                config.overdue_scan_interval = every;
            }
            if let Some(webhooks) = &self.webhooks {
                config.webhook_allow_private = webhooks.allow_private;
                config.webhook_retry_schedule =
                    webhooks.retry_schedule.clone().map(ontab::config::Schedule);
                config.webhook_timeout = webhooks.timeout;
                config.webhook_lease_margin = webhooks.lease_margin;
                config.webhook_poll_interval = Duration::from_millis(100);
                config.nats_url = webhooks.nats_url.clone();
                config.webhook_concurrency = webhooks.concurrency;
            }
            if let Some(every) = self.event_sequence_interval {
                config.event_sequence_interval = every;
                config.overdue_scan_interval = every;
                config.event_prune_interval = every;
            }
        })
        .await
    }
}

/// Starts a server on `database_url`, the owner's (it migrates it), whose
/// pool logs in as [`SERVER_ROLE`], with `ontab serve`'s defaults, then
/// `tune`s them, on a loopback port; answers its base URL. Group commit is
/// on, as `serve` ships, unless ONTAB_TEST_BATCH=off.
pub async fn start_server(database_url: String, tune: impl FnOnce(&mut ServeConfig)) -> String {
    let owner = ontab::db::parse_url(&database_url).expect("a valid connection string");
    // The login role needs ontab_app, which the first migration creates.
    migrate::run_on(&owner)
        .await
        .expect("the database migrates");
    ensure_server_role(&owner).await;
    let app_url = connection_string(&as_server_role(&owner));
    serve(Some(database_url), Some(app_url), tune).await
}

/// `ontab serve`'s configuration as it ships (flags and environment), on a
/// loopback port with the harness's admin token, group commit off under
/// ONTAB_TEST_BATCH=off.
pub fn serve_config() -> ServeConfig {
    let mut config = Serve::try_parse_from(["ontab"])
        .expect("serve's defaults parse")
        .config;
    config.listen = "127.0.0.1:0".parse().expect("loopback address");
    config.admin_token = Some(ADMIN_TOKEN.to_owned());
    if !batching() {
        config.batch_max_size = 1;
    }
    // Small batches beside one another, as the suite's races need (a
    // purchase held at a lock takes a slot of its own); the default makes a
    // batch beside another wait for 8 (commit_outcome.rs tests that rule with
    // 16).
    config.batch_min_beside = 1;
    config
}

/// Starts a server with the owner's `database_url` and the pool's
/// `app_database_url` as given, `tune`d; answers its base URL.
async fn serve(
    database_url: Option<String>,
    app_database_url: Option<String>,
    tune: impl FnOnce(&mut ServeConfig),
) -> String {
    let mut config = serve_config();
    config.database.database_url = database_url;
    config.app_database_url = app_database_url;
    tune(&mut config);
    let server = ontab::server::build(&config)
        .await
        .expect("the server builds");
    let address = server.local_addr().expect("bound address");
    tokio::spawn(server.run(std::future::pending()));
    format!("http://{address}")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(StatementMode::Prepared).await
    }

    pub async fn spawn_with(statements: StatementMode) -> Self {
        Self::spawn_tuned(
            statements,
            16,
            Duration::from_secs(10),
            Duration::from_secs(30),
        )
        .await
    }

    /// An app with its own pool size, wait for a pooled connection, and
    /// request timeout (which is also its statement timeout, as in serve).
    pub async fn spawn_tuned(
        statements: StatementMode,
        pool_size: usize,
        pool_wait: Duration,
        request_timeout: Duration,
    ) -> Self {
        Self::spawn_inner(
            statements,
            pool_size,
            pool_wait,
            request_timeout,
            request_timeout,
        )
        .await
    }

    /// An app whose statements may outlive its requests (serve ties the two
    /// together; a statement can still start after its request did): for
    /// showing that a request that gave up leaves nothing written even then.
    pub async fn spawn_with_timeouts(
        request_timeout: Duration,
        statement_timeout: Duration,
    ) -> Self {
        Self::spawn_inner(
            StatementMode::Prepared,
            16,
            Duration::from_secs(10),
            request_timeout,
            statement_timeout,
        )
        .await
    }

    /// An app whose server never sweeps expired holds (as when another
    /// instance does): what is decided before any background work runs.
    pub async fn spawn_without_hold_sweep() -> Self {
        Self::spawn_launched(|launch| launch.hold_sweep_interval = Some(Duration::ZERO)).await
    }

    /// An app whose server numbers no events (as when another instance
    /// does): a test numbers them itself, when it wants.
    pub async fn spawn_without_sequencer() -> Self {
        Self::spawn_launched(|launch| launch.event_sequence_interval = Some(Duration::ZERO)).await
    }

    /// An app whose server looks for overdue purchases `every` (0: never,
    /// as when another instance does).
    pub async fn spawn_with_overdue_scan(every: Duration) -> Self {
        Self::spawn_launched(|launch| launch.overdue_scan_interval = Some(every)).await
    }

    /// An app whose server delivers webhooks (and publishes to NATS) as
    /// `webhooks` says.
    pub async fn spawn_with_webhooks(webhooks: WebhookLaunch) -> Self {
        Self::spawn_launched(|launch| launch.webhooks = Some(webhooks)).await
    }

    async fn spawn_inner(
        statements: StatementMode,
        pool_size: usize,
        pool_wait: Duration,
        request_timeout: Duration,
        statement_timeout: Duration,
    ) -> Self {
        Self::spawn_launched(|launch| {
            launch.statements = statements;
            launch.pool_size = pool_size;
            launch.pool_wait = pool_wait;
            launch.request_timeout = request_timeout;
            launch.statement_timeout = statement_timeout;
        })
        .await
    }

    async fn spawn_launched(tune: impl FnOnce(&mut Launch)) -> Self {
        // The server's logs, when asked for (RUST_LOG=debug cargo test ...).
        if std::env::var_os("RUST_LOG").is_some() {
            ontab::telemetry::init();
        }
        let cluster = cluster().await;
        let db_name = format!("ontab_test_{}", Uuid::new_v4().simple());
        let mut db_config = cluster.admin.clone();
        db_config.config.dbname(&db_name);
        match &cluster.template {
            Some(template) => {
                connect(&cluster.admin)
                    .await
                    .batch_execute(&format!("CREATE DATABASE {db_name} TEMPLATE {template}"))
                    .await
                    .expect("create test database");
                // A copy has the schema but not the database's privileges,
                // which the migrator sets at every run (TEMPORARY): as an
                // operator would, migrate it (nothing is pending).
                migrate::run_on(&db_config)
                    .await
                    .expect("the copy of the template migrates");
            }
            None => create_citus_database(cluster, &db_config).await,
        }
        let app_config = as_server_role(&match std::env::var("ONTAB_TEST_POOLER") {
            Ok(pooler) => through_pooler(&pooler, &cluster.admin, &db_name),
            Err(_) => db_config.clone(),
        });
        let mut launch = Launch {
            app_config,
            statements: StatementMode::Prepared,
            pool_size: 16,
            pool_wait: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(30),
            hold_sweep_interval: None,
            overdue_scan_interval: None,
            webhooks: None,
            event_sequence_interval: None,
        };
        tune(&mut launch);
        if std::env::var("ONTAB_TEST_STATEMENTS").as_deref() == Ok("unnamed") {
            launch.statements = StatementMode::Unnamed;
        }
        Self {
            base_url: launch.serve().await,
            http: reqwest::Client::new(),
            db_config,
            db_name,
            launch,
            owns_database: true,
        }
    }

    /// A second server instance over this app's database, with its own pool
    /// and caches, as when several instances share one database.
    pub async fn another_instance(&self) -> Self {
        Self {
            base_url: self.launch.serve().await,
            http: reqwest::Client::new(),
            db_config: self.db_config.clone(),
            db_name: self.db_name.clone(),
            launch: self.launch.clone(),
            owns_database: false,
        }
    }

    /// Another server instance over this app's database whose pool logs in
    /// with `app_config` instead (through a proxy, say).
    /// The events' background work (sequencer, overdue scan, pruning) is
    /// left to this app, so that the COMMITs through a fault-injecting
    /// connection are the requests'.
    pub async fn another_instance_over(&self, app_config: ConnectOptions) -> Self {
        let launch = Launch {
            app_config,
            event_sequence_interval: Some(Duration::ZERO),
            ..self.launch.clone()
        };
        Self {
            base_url: launch.serve().await,
            http: reqwest::Client::new(),
            db_config: self.db_config.clone(),
            db_name: self.db_name.clone(),
            launch,
            owns_database: false,
        }
    }

    /// How this app's pool reaches its database: as [`SERVER_ROLE`],
    /// directly or through ONTAB_TEST_POOLER.
    pub fn app_login(&self) -> &ConnectOptions {
        &self.launch.app_config
    }

    /// The name of this test's database.
    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    /// Gives PUBLIC back TEMPORARY on this test's database, as a database
    /// has it where the migrator could not revoke it (migrations/0028).
    pub async fn grant_public_temporary(&self) {
        self.sql()
            .await
            .batch_execute(&format!(
                "GRANT TEMPORARY ON DATABASE {} TO PUBLIC",
                self.db_name
            ))
            .await
            .expect("grant TEMPORARY back to PUBLIC");
    }

    /// A superuser connection to this test's database.
    pub async fn sql(&self) -> Client {
        connect(&self.db_config).await
    }

    /// A libpq connection string for this test's database, superuser, for
    /// running the `ontab` binary against it.
    pub fn database_url(&self) -> String {
        connection_string(&self.db_config)
    }

    /// Returns once the session `pid` waits for a lock (within 5 s), or
    /// panics with `failure`.
    pub async fn wait_for_a_lock(&self, pid: i32, failure: &str) {
        let watcher = self.sql().await;
        // On Citus the session's work waits on the node that holds the
        // business (a delegated function runs there): its distributed
        // transaction, named by the session's global pid, is what waits.
        let waiting_sql = if citus_url().is_some() {
            "SELECT EXISTS (SELECT 1 FROM citus_lock_waits
                             WHERE waiting_gpid = citus_calculate_gpid(
                                       (SELECT nodeid FROM pg_dist_node WHERE groupid = 0), $1))"
        } else {
            "SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1"
        };
        for _ in 0..500 {
            let waiting: bool = watcher
                .query_one(waiting_sql, &[&pid])
                .await
                .expect("activity")
                .get(0);
            if waiting {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{failure}");
    }

    /// Returns once at least `n` sessions of this test's database wait for
    /// a lock (within 10 s), or panics with `failure`.
    pub async fn wait_for_lock_waiters(&self, n: i64, failure: &str) {
        let watcher = self.sql().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let waiting: i64 = watcher
                .query_one(lock_waiters_sql(), &[])
                .await
                .expect("activity")
                .get(0);
            if waiting >= n {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{failure}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Returns once no other client session of this test's database runs a
    /// statement or holds a transaction open (within 10 s): whatever the
    /// server had in flight there has committed or rolled back.
    pub async fn wait_until_settled(&self) {
        let watcher = self.sql().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let busy: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND pid <> pg_backend_pid()
                        AND backend_type = 'client backend' AND state <> 'idle'",
                    &[],
                )
                .await
                .expect("activity")
                .get(0);
            if busy == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{busy} sessions still busy after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs `ontab audit` over this test's database and asserts it is clean.
    pub async fn assert_audit_clean(&self) {
        let mut client = self.sql().await;
        let report = ontab::app::audit::audit(&mut client, None)
            .await
            .expect("audit runs");
        assert!(
            report.violations.is_empty(),
            "audit found violations: {:#?}",
            report.violations
        );
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body read");
        // Non-JSON bodies (the metrics text) are kept as a string.
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        assert!(
            status < 500 || status == 503,
            "server error {status}: {body}"
        );
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.request(reqwest::Method::GET, path, Some(key), &[], None)
            .await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.request(reqwest::Method::POST, path, Some(key), &[], Some(&body))
            .await
    }

    pub async fn post_once(
        &self,
        path: &str,
        key: &str,
        idempotency_key: &str,
        body: Value,
    ) -> Reply {
        self.request(
            reqwest::Method::POST,
            path,
            Some(key),
            &[("Idempotency-Key", idempotency_key)],
            Some(&body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Reply {
        self.request(reqwest::Method::PATCH, path, Some(key), &[], Some(&body))
            .await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.request(reqwest::Method::DELETE, path, Some(key), &[], None)
            .await
    }

    pub async fn business(&self, name: &str) -> Business {
        let reply = self
            .request(
                reqwest::Method::POST,
                "/v1/businesses",
                Some(ADMIN_TOKEN),
                &[],
                Some(&json!({ "name": name })),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        Business {
            id: reply.id(),
            key: reply.body["api_key"]["key"]
                .as_str()
                .expect("key shown once")
                .to_owned(),
        }
    }

    pub async fn customer(&self, business: &Business, credit_limit: i64) -> Uuid {
        let reply = self
            .post(
                "/v1/customers",
                &business.key,
                json!({ "name": "Customer", "credit_limit": credit_limit }),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.id()
    }

    pub async fn product(&self, business: &Business, price: i64, stock: i64) -> Uuid {
        let reply = self
            .post(
                "/v1/products",
                &business.key,
                json!({ "name": "Product", "price": price, "stock": stock }),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.id()
    }

    /// POST /v1/purchases with `(product, quantity)` lines.
    pub async fn purchase(
        &self,
        business: &Business,
        customer: Uuid,
        lines: &[(Uuid, i64)],
    ) -> Reply {
        let items: Vec<Value> = lines
            .iter()
            .map(|(product, quantity)| json!({ "product_id": product, "quantity": quantity }))
            .collect();
        self.post(
            "/v1/purchases",
            &business.key,
            json!({ "customer_id": customer, "items": items }),
        )
        .await
    }
}

/// A database on the Citus coordinator and on each worker, with the
/// extension and the nodes registered, migrated (and so distributed) as
/// `ontab migrate` does. Four shards per table, not Citus's 32: as
/// distributed, and each test's database is made in seconds.
async fn create_citus_database(cluster: &Cluster, db_config: &ConnectOptions) {
    let db_name = db_config.config.get_dbname().expect("a database name");
    let coordinator_host = match cluster.admin.config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let coordinator_port = cluster
        .admin
        .config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432);
    let mut nodes = vec![cluster.admin.clone()];
    for (host, port) in &cluster.workers {
        let dbname = cluster.admin.config.get_dbname().unwrap_or("postgres");
        nodes.push(on_node(&cluster.admin, host, *port, dbname));
    }
    for node in &nodes {
        connect(node)
            .await
            .batch_execute(&format!("CREATE DATABASE {db_name}"))
            .await
            .expect("create the test database on a Citus node");
        let mut in_db = node.clone();
        in_db.config.dbname(db_name);
        connect(&in_db)
            .await
            .batch_execute("CREATE EXTENSION citus")
            .await
            .expect("citus in the test database");
    }
    // One database registered and placed at a time: adding a node syncs
    // the cluster's roles and metadata to it (two at once failed on a
    // worker's connection), and placing lets ontab's roles log in, and
    // roles are the whole cluster's.
    let lock = connect(&cluster.admin).await;
    lock.execute("SELECT pg_advisory_lock(7041726003)", &[])
        .await
        .expect("lock");
    let coordinator = connect(db_config).await;
    coordinator
        .batch_execute(&format!(
            "ALTER DATABASE {db_name} SET citus.shard_count = 4;
             SELECT citus_set_coordinator_host('{coordinator_host}', {coordinator_port})"
        ))
        .await
        .expect("register the coordinator");
    for (host, port) in &cluster.workers {
        coordinator
            .execute("SELECT citus_add_node($1, $2)", &[host, port])
            .await
            .expect("add a worker to the test database");
    }
    drop(coordinator);
    migrate::run_on(db_config)
        .await
        .expect("the test database migrates and distributes");
    // Roles made on the coordinator reach the workers.
    ensure_server_role(&cluster.admin).await;
    lock.execute("SELECT pg_advisory_unlock(7041726003)", &[])
        .await
        .expect("unlock");
}

/// `admin`'s login on another node of a Citus cluster, database `dbname`.
fn on_node(admin: &ConnectOptions, host: &str, port: i32, dbname: &str) -> ConnectOptions {
    let mut config = Config::new();
    config
        .host(host)
        .port(u16::try_from(port).expect("a node's port"))
        .user(admin.config.get_user().unwrap_or("postgres"))
        .ssl_mode(admin.config.get_ssl_mode())
        .dbname(dbname);
    if let Some(password) = admin.config.get_password() {
        config.password(password);
    }
    ConnectOptions {
        config,
        tls: admin.tls.clone(),
    }
}

impl Drop for TestApp {
    /// Drops this test's database. Drop cannot await, so a short-lived
    /// thread with its own runtime does it; FORCE ends the pool's sessions.
    fn drop(&mut self) {
        if !self.owns_database {
            return;
        }
        let Some(cluster) = CLUSTER.get() else { return };
        let admin = cluster.admin.clone();
        let workers = cluster.workers.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name);
        let db_name = self.db_name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = admin.connect().await.ok()?;
                tokio::spawn(connection);
                client.batch_execute(&statement).await.ok()?;
                // On Citus, the workers' copies too.
                for (host, port) in workers {
                    // A transaction a killed server left prepared on a
                    // worker (its coordinator's copy is gone, so nothing
                    // will resolve it) would keep the database there.
                    let in_test_db = on_node(&admin, &host, port, &db_name);
                    if let Ok((client, connection)) = in_test_db.connect().await {
                        tokio::spawn(connection);
                        let prepared = client
                            .query(
                                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
                                &[],
                            )
                            .await
                            .unwrap_or_default();
                        for row in prepared {
                            let gid: String = row.get(0);
                            let _ = client
                                .batch_execute(&format!("ROLLBACK PREPARED '{gid}'"))
                                .await;
                        }
                    }
                    let dbname = admin.config.get_dbname().unwrap_or("postgres");
                    let worker = on_node(&admin, &host, port, dbname);
                    let (client, connection) = worker.connect().await.ok()?;
                    tokio::spawn(connection);
                    client.batch_execute(&statement).await.ok()?;
                }
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test database {}", self.db_name);
        }
    }
}

/// What PostgreSQL answered to a statement that had to fail.
#[derive(Debug)]
pub struct Refused {
    pub code: SqlState,
    pub message: String,
    pub constraint: Option<String>,
}

pub fn refused_by(
    result: Result<impl std::fmt::Debug, tokio_postgres::Error>,
    what: &str,
) -> Refused {
    let error = match result {
        Ok(answer) => panic!("`{what}` should have failed, but answered {answer:?}"),
        Err(error) => error,
    };
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("`{what}` failed without a database error: {error:?}"));
    Refused {
        code: db.code().clone(),
        message: without_shard_suffixes(db.message()),
        constraint: db.constraint().map(str::to_owned),
    }
}

/// Runs `sql` in a transaction of its own, as the session's tenant, and
/// returns how it was refused (by the statement, or at commit).
pub async fn refused(client: &Client, sql: &str) -> Refused {
    refused_by(in_session_tenant_tx(client, sql).await, sql)
}

/// On Citus a check deferred to COMMIT fails on the node, and the
/// coordinator answers XX000 "could not commit transaction for shard ...",
/// the node's own error only a WARNING (docs/scale-out.md): refused still,
/// but not as one PostgreSQL says it.
pub fn refused_at_commit_on_citus(refusal: &Refused) -> bool {
    citus_url().is_some() && refusal.code == SqlState::INTERNAL_ERROR
}

/// The refusal names `constraint`; on Citus, which passes on a node's
/// error without its constraint field, it may name none.
pub fn assert_constraint(refusal: &Refused, constraint: &str, what: &str) {
    if citus_url().is_some() && refusal.constraint.is_none() {
        return;
    }
    assert_eq!(
        refusal.constraint.as_deref(),
        Some(constraint),
        "{what}: {refusal:?}"
    );
}
