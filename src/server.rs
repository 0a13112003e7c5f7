//! `ontab serve` and `ontab migrate`: find or start the database, migrate,
//! serve until a shutdown signal, then drain and stop.

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{DatabaseConfig, ServeConfig};
use crate::db::{Db, migrate};
use crate::domain::{Currency, Name, Validator};
use crate::embedded_pg::EmbeddedPostgres;
use crate::http::batch::{BatchConfig, Batcher};
use crate::http::businesses::create_with_key;
use crate::http::listener::{ConnectionLimits, max_connections_for, raise_fd_limit};
use crate::http::{AppState, auth::admin_token_hash, router};

/// A database to talk to: the configured one, or a private one we started.
pub struct Database {
    pub url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Uses DATABASE_URL, or starts the private PostgreSQL under the data dir.
    pub async fn open(config: &DatabaseConfig) -> anyhow::Result<Self> {
        if let Some(url) = &config.database_url {
            return Ok(Self {
                url: url.clone(),
                embedded: None,
            });
        }
        let embedded = EmbeddedPostgres::start(&config.data_dir, "ontab")
            .await
            .context("DATABASE_URL is not set, and the private PostgreSQL could not start")?;
        tracing::info!(data_dir = %config.data_dir.display(), "using the private PostgreSQL");
        Ok(Self {
            url: embedded.connection_string(),
            embedded: Some(embedded),
        })
    }

    /// Applies pending migrations over a connection of its own.
    pub async fn migrate(&self) -> anyhow::Result<Vec<i32>> {
        Ok(migrate::run_on(&crate::db::parse_url(&self.url)?).await?)
    }

    /// Whether this is the private PostgreSQL rather than DATABASE_URL.
    pub fn is_private(&self) -> bool {
        self.embedded.is_some()
    }

    /// Stops the private PostgreSQL, if we started one.
    pub async fn close(self) -> anyhow::Result<()> {
        if let Some(embedded) = self.embedded {
            embedded
                .stop()
                .await
                .context("stopping the private PostgreSQL")?;
        }
        Ok(())
    }
}

pub async fn migrate(config: DatabaseConfig) -> anyhow::Result<()> {
    let database = Database::open(&config).await?;
    let outcome = database.migrate().await;
    database.close().await?;
    match outcome?.as_slice() {
        [] => println!("database is up to date"),
        applied => println!("applied migrations {applied:?}"),
    }
    Ok(())
}

/// Arguments of `ontab businesses create`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateBusinessArgs {
    /// The business's name.
    #[arg(long)]
    pub name: String,
    /// ISO 4217 currency code.
    #[arg(long, default_value = "USD")]
    pub currency: String,
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Creates a business through the same code path as the admin endpoint and
/// prints it as JSON, API key included.
pub async fn create_business(args: CreateBusinessArgs) -> anyhow::Result<()> {
    let mut check = Validator::default();
    let name = check.check(Name::parse("name", &args.name));
    let currency = check.check(Currency::parse("currency", &args.currency));
    let (name, currency) = check
        .finish(|| Some((name?, currency?)))
        .map_err(|errors| {
            let reasons: Vec<String> = errors
                .iter()
                .map(|e| format!("--{}: {}", e.field, e.message))
                .collect();
            anyhow::anyhow!(reasons.join("; "))
        })?;
    let database = Database::open(&args.database).await?;
    let created = async {
        database.migrate().await?;
        let config = &args.database;
        let db = Db::connect(
            crate::db::parse_url(&database.url)?,
            1,
            config.pool_timeout,
            config.statements,
        )?;
        let state = AppState {
            db,
            admin_token_sha256: None,
            request_timeout: Duration::from_secs(10),
            batcher: None,
        };
        create_with_key(&state, &name, &currency)
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))
    }
    .await;
    database.close().await?;
    println!("{}", serde_json::to_string_pretty(&created?)?);
    Ok(())
}

pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let database = Database::open(&config.database).await?;
    let served = run(&config, &database).await;
    database.close().await?;
    served
}

async fn run(config: &ServeConfig, database: &Database) -> anyhow::Result<()> {
    let fd_limit = raise_fd_limit();
    let applied = database.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    let db = Db::connect(
        crate::db::parse_url(&database.url)?,
        config.database.pool_size,
        config.database.pool_timeout,
        config.database.statements,
    )?
    .with_statement_timeout(config.request_timeout);
    // On a private local database with no admin token configured, a one-off
    // token makes the quick start work without any setup; with a real
    // DATABASE_URL the admin endpoint stays off unless configured.
    let admin_token = match (&config.admin_token, database.is_private()) {
        (Some(token), _) => Some(token.clone()),
        (None, true) => Some(one_off_token()?),
        (None, false) => None,
    };
    let batcher = (config.batch_max_size > 1).then(|| {
        Batcher::new(
            db.clone(),
            BatchConfig {
                max_size: usize::from(config.batch_max_size),
                max_inflight: usize::from(config.batch_max_inflight),
                wait: config.batch_wait,
            },
        )
    });
    let state = AppState {
        db: db.clone(),
        admin_token_sha256: admin_token.as_deref().map(admin_token_hash),
        request_timeout: config.request_timeout,
        batcher,
    };
    crate::http::metrics::install();
    let app = router(state, config.body_limit);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    print_welcome(
        address,
        admin_token.as_deref(),
        config.admin_token.is_some(),
    );
    let janitor = tokio::spawn(expire_idempotency_keys(db));

    let grace = config.shutdown_grace;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let limits = ConnectionLimits {
        header_read_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        max_header_bytes: config.max_header_bytes,
        max_connections: config.max_connections.or_else(|| {
            fd_limit.map(|nofile| max_connections_for(nofile, config.database.pool_size))
        }),
    };
    tracing::info!(?fd_limit, max_connections = ?limits.max_connections, "connection limits");
    let server = crate::http::listener::serve(listener, app, limits, async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(());
    });
    let mut drained = Box::pin(server);
    let mut stop_rx = stop_rx;
    tokio::select! {
        served = &mut drained => served.context("server failed")?,
        _ = async { let _ = stop_rx.changed().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "in-flight requests did not finish within the grace period");
        }
    }
    janitor.abort();
    Ok(())
}

fn one_off_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("random source: {error}"))?;
    Ok(hex::encode(bytes))
}

fn print_welcome(address: std::net::SocketAddr, admin_token: Option<&str>, configured: bool) {
    println!("ontab listening on http://{address}");
    let Some(token) = admin_token else {
        println!("the admin endpoint is off: set ONTAB_ADMIN_TOKEN to create businesses over HTTP");
        return;
    };
    // A configured token is the operator's secret: refer to it, never print it.
    let bearer = if configured {
        "$ONTAB_ADMIN_TOKEN".to_owned()
    } else {
        token.to_owned()
    };
    if !configured {
        println!("no ONTAB_ADMIN_TOKEN set: this run's admin token is {token}");
    }
    println!("create a business:");
    println!(
        "  curl -s -X POST http://{address}/v1/businesses -H \"Authorization: Bearer {bearer}\" \\\n    \
         -H 'Content-Type: application/json' -d '{{\"name\": \"Acme\", \"currency\": \"USD\"}}'"
    );
}

/// Keys are kept at least 24 hours (the contract); older ones go hourly.
async fn expire_idempotency_keys(db: Db) {
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match db
            .expire_idempotency_keys(Duration::from_secs(48 * 3600))
            .await
        {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired idempotency keys removed"),
            Err(error) => tracing::warn!(%error, "could not expire idempotency keys"),
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
