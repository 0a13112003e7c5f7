//! `ontab serve`: find or start the database, migrate (or check the schema
//! when its login may not migrate), build the use cases and the HTTP edge,
//! serve until told to stop, then drain and stop. [`build`] is used by
//! `main` and by the test harness alike, so tests run the server exactly as
//! it ships. Who the pool logs in as is the `login` module's business.

mod login;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::app::App;
use crate::config::{DatabaseConfig, ServeConfig};
use crate::db::{Db, migrate};
use crate::embedded_pg::EmbeddedPostgres;
use crate::embedded_pg::data_dir::DataDir;
use crate::http::listener::{ConnectionLimits, max_connections_for, raise_fd_limit};
use crate::http::{self, HttpState};

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
        let data_dir = DataDir::resolve(config.data_dir.as_deref())
            .context("DATABASE_URL is not set, and the private PostgreSQL has nowhere to live")?;
        if let Some(notice) = data_dir.notice() {
            eprintln!("ontab: {notice}");
        }
        let embedded = EmbeddedPostgres::start(data_dir.path(), "ontab")
            .await
            .context("DATABASE_URL is not set, and the private PostgreSQL could not start")?;
        tracing::info!(data_dir = %data_dir.path().display(), "using the private PostgreSQL");
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

/// A server ready to run: its database migrated, its port bound.
pub struct Server {
    /// The owner's database (DATABASE_URL or the private PostgreSQL);
    /// `None` when serve has only the app's login.
    database: Option<Database>,
    app: Arc<App>,
    listener: TcpListener,
    router: http::Api,
    admin_token: Option<String>,
    admin_token_configured: bool,
    limits: ConnectionLimits,
    shutdown_grace: Duration,
    hold_sweep_interval: Duration,
    events: EventSettings,
    webhook_concurrency: usize,
    nats: Option<crate::app::nats::NatsSettings>,
}

/// The event feed's background work, as configured.
#[derive(Debug, Clone, Copy)]
struct EventSettings {
    sequence_interval: Duration,
    overdue_scan_interval: Duration,
    retention: Duration,
    prune_interval: Duration,
}

/// Opens (or starts) the database, migrates it, and builds the use cases
/// and the HTTP edge on a bound listener, as `config` says.
pub async fn build(config: &ServeConfig) -> anyhow::Result<Server> {
    // Before any connection is made: the more descriptors, the more clients.
    let fd_limit = raise_fd_limit();
    let limits = ConnectionLimits {
        header_read_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        max_header_bytes: config.max_header_bytes,
        max_connections: config.max_connections.or_else(|| {
            fd_limit.map(|nofile| max_connections_for(nofile, config.database.pool_size))
        }),
    };
    tracing::info!(?fd_limit, max_connections = ?limits.max_connections, "connection limits");
    // With only the app's login, there is no owner's database to open (and
    // no private PostgreSQL to start).
    let database = match (&config.database.database_url, &config.app_database_url) {
        (None, Some(_)) => None,
        _ => Some(Database::open(&config.database).await?),
    };
    match assemble(config, database.as_ref()).await {
        Ok((app, listener, router, admin_token)) => Ok(Server {
            database,
            app,
            listener,
            router,
            admin_token,
            admin_token_configured: config.admin_token.is_some(),
            limits,
            shutdown_grace: config.shutdown_grace,
            hold_sweep_interval: config.hold_sweep_interval,
            events: EventSettings {
                sequence_interval: config.event_sequence_interval,
                overdue_scan_interval: config.overdue_scan_interval,
                retention: config.event_retention,
                prune_interval: config.event_prune_interval,
            },
            webhook_concurrency: config.webhook_concurrency,
            nats: config
                .nats_url
                .clone()
                .map(|url| crate::app::nats::NatsSettings {
                    url,
                    poll: config.webhook_poll_interval,
                }),
        }),
        Err(error) => {
            // Whatever failed, a private PostgreSQL we started stops again.
            if let Some(database) = database
                && let Err(stop_error) = database.close().await
            {
                tracing::warn!(%stop_error, "could not stop the private PostgreSQL");
            }
            Err(error)
        }
    }
}

async fn assemble(
    config: &ServeConfig,
    database: Option<&Database>,
) -> anyhow::Result<(Arc<App>, TcpListener, http::Api, Option<String>)> {
    let pool_login = login::prepare(config, database).await?;
    let db = Db::connect(pool_login.options.clone(), config.pool_options())?;
    login::check(&db, &pool_login, config.production).await?;
    // On a private local database with no admin token configured, a one-off
    // token makes the quick start work without any setup; with a real
    // DATABASE_URL the admin endpoint stays off unless configured.
    let private = database.is_some_and(Database::is_private);
    let admin_token = match (&config.admin_token, private) {
        (Some(token), _) => Some(token.clone()),
        (None, true) => Some(one_off_token()?),
        (None, false) => None,
    };
    let app = App::new(db, config.app_config(admin_token.clone()));
    http::install_metrics();
    let router = http::router(
        HttpState {
            app: app.clone(),
            request_timeout: config.request_timeout,
        },
        config.body_limit,
    );
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    Ok((app, listener, router, admin_token))
}

impl Server {
    /// Where it listens (the real port when configured with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The use cases, for work beside the HTTP edge (tests, background jobs).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Serves until `shutdown` completes, then lets in-flight requests
    /// finish within the grace period, and stops the private PostgreSQL if
    /// it was started here.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            database,
            app,
            listener,
            router,
            limits,
            shutdown_grace,
            hold_sweep_interval,
            events,
            webhook_concurrency,
            nats,
            ..
        } = self;
        let janitor = tokio::spawn(expire_idempotency_keys(app.clone()));
        let metrics_upkeep = tokio::spawn(http::metrics_upkeep());
        let sweeper = (!hold_sweep_interval.is_zero())
            .then(|| tokio::spawn(crate::app::holds::sweep(app.clone(), hold_sweep_interval)));
        let event_work = event_work(&app, events);
        // Events out: webhooks (unless another instance delivers) and NATS.
        let deliverer = (webhook_concurrency > 0)
            .then(|| tokio::spawn(crate::app::webhooks::delivery::run(app.clone())));
        let publisher =
            nats.map(|settings| tokio::spawn(crate::app::nats::run(app.clone(), settings)));
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(());
        let served = http::listener::serve(listener, router, limits, async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop_tx.send(());
        });
        let mut drained = Box::pin(served);
        let outcome = tokio::select! {
            served = &mut drained => served.context("server failed"),
            _ = async { let _ = stop_rx.changed().await; tokio::time::sleep(shutdown_grace).await } => {
                tracing::warn!(?shutdown_grace, "in-flight requests did not finish within the grace period");
                Ok(())
            }
        };
        janitor.abort();
        metrics_upkeep.abort();
        for task in [sweeper, deliverer, publisher].into_iter().flatten() {
            task.abort();
        }
        for task in event_work {
            task.abort();
        }
        drop(app);
        if let Some(database) = database {
            database.close().await?;
        }
        outcome
    }

    /// Prints where it listens and how to create a business.
    pub fn print_welcome(&self) -> anyhow::Result<()> {
        let address = self.local_addr()?;
        println!("ontab listening on http://{address}");
        let Some(token) = &self.admin_token else {
            println!(
                "the admin endpoint is off: set ONTAB_ADMIN_TOKEN to create businesses over HTTP"
            );
            return Ok(());
        };
        // A configured token is the operator's secret: refer to it, never print it.
        let bearer = if self.admin_token_configured {
            "$ONTAB_ADMIN_TOKEN".to_owned()
        } else {
            println!("no ONTAB_ADMIN_TOKEN set: this run's admin token is {token}");
            token.clone()
        };
        println!("create a business:");
        println!(
            "  curl -s -X POST http://{address}/v1/businesses -H \"Authorization: Bearer {bearer}\" \\\n    \
             -H 'Content-Type: application/json' -d '{{\"name\": \"Acme\", \"currency\": \"USD\"}}'"
        );
        Ok(())
    }
}

/// `ontab serve`.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let server = build(&config).await?;
    server.print_welcome()?;
    server.run(shutdown_signal()).await
}

fn one_off_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("random source: {error}"))?;
    Ok(hex::encode(bytes))
}

/// The event feed's background tasks: the sequencer and the listener that
/// wakes waiting readers, the overdue scan, retention (an interval of 0
/// leaves that work to another instance).
fn event_work(app: &Arc<App>, settings: EventSettings) -> Vec<tokio::task::JoinHandle<()>> {
    use crate::app::events;
    let mut tasks = vec![tokio::spawn(events::listen(app.clone()))];
    if !settings.prune_interval.is_zero() {
        tasks.push(tokio::spawn(events::retention(
            app.clone(),
            settings.retention,
            settings.prune_interval,
        )));
    }
    if !settings.sequence_interval.is_zero() {
        tasks.push(tokio::spawn(events::sequencer(
            app.clone(),
            settings.sequence_interval,
        )));
    }
    if !settings.overdue_scan_interval.is_zero() {
        tasks.push(tokio::spawn(events::overdue_scan(
            app.clone(),
            settings.overdue_scan_interval,
        )));
    }
    tasks
}

/// Keys are kept at least 24 hours (the contract); older ones go hourly.
async fn expire_idempotency_keys(app: Arc<App>) {
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match app
            .db()
            .expire_idempotency_keys(Duration::from_secs(48 * 3600))
            .await
        {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired idempotency keys removed"),
            Err(error) => tracing::warn!(%error, "could not expire idempotency keys"),
        }
    }
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
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
