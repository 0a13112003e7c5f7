//! The configuration, read from flags with environment fallbacks: the edge
//! where operators meet ontab. The layers below take plain values built
//! from it (`db::PoolOptions`, `app::AppConfig`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::app::AppConfig;
use crate::app::group_commit::GroupCommitConfig;
use crate::app::webhooks::WebhookSettings;
use crate::db::{PoolOptions, StatementMode};

/// Database settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL connection string (URL or key=value). When unset, ontab runs
    /// a private PostgreSQL with its data under --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where the private PostgreSQL keeps its data when DATABASE_URL is unset.
    /// Unset: `.ontab`, or, as root when the postgres user cannot reach it, a
    /// directory of this checkout's own under /var/lib/ontab.
    // No clap default: an explicit directory is used as given, the default
    // may move (embedded_pg::data_dir).
    #[arg(long, env = "ONTAB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Maximum number of pooled database connections.
    #[arg(long, env = "ONTAB_DB_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,

    /// How long a request waits for a pooled connection before it is answered
    /// with 503 unavailable.
    #[arg(long, env = "ONTAB_DB_POOL_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub pool_timeout: Duration,

    /// prepared (default) or unnamed (behind PgBouncer < 1.21 in transaction mode).
    #[arg(long, env = "ONTAB_DB_STATEMENTS", default_value = "prepared", value_parser = parse_statement_mode)]
    pub statements: StatementMode,
}

fn parse_statement_mode(text: &str) -> Result<StatementMode, String> {
    match text {
        "prepared" => Ok(StatementMode::Prepared),
        "unnamed" => Ok(StatementMode::Unnamed),
        other => Err(format!("`{other}`: use prepared or unnamed")),
    }
}

/// Settings of `ontab serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "ONTAB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Token that authorizes creating businesses. The admin endpoint is
    /// disabled when unset.
    #[arg(long, env = "ONTAB_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "ONTAB_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Longest a request's work may take before it is rolled back and
    /// answered 503 (a request whose COMMIT is under way waits for it).
    #[arg(long, env = "ONTAB_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Longest one SQL statement may run, lock waits included (default: the
    /// request timeout), so a request that gave up does not leave its
    /// database session waiting behind it.
    #[arg(long, env = "ONTAB_STATEMENT_TIMEOUT", value_parser = parse_duration)]
    pub statement_timeout: Option<Duration>,

    /// How long in-flight requests may run after a shutdown signal.
    #[arg(long, env = "ONTAB_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Most purchases of one business committed in one transaction (group
    /// commit under load); 1 turns batching off.
    #[arg(long, env = "ONTAB_BATCH_MAX_SIZE", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_max_size: u16,

    /// Batches of one business in flight at once; a batch starts as soon as
    /// one of these is free, so a lone purchase never waits.
    #[arg(long, env = "ONTAB_BATCH_MAX_INFLIGHT", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_max_inflight: u16,

    /// Fewest purchases a batch starts with while another batch of the same
    /// business is in flight (it starts with fewer once that one ends); 1
    /// starts it at once. A small batch beside another mostly waited for
    /// the other's row locks and paid a whole batch's overhead for a few
    /// orders (docs/benchmarks.md, "A second batch only with company"). 8
    /// since batches in flight never share a customer: at 16 clients, 16
    /// kept one batch at a time, 8 sold 15 % more ("A customer in one batch
    /// at a time").
    #[arg(long, env = "ONTAB_BATCH_MIN_BESIDE", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_min_beside: u16,

    /// How long a batch that already has company may wait for more (e.g.
    /// 200us); 0 never waits. At most 5ms.
    #[arg(long, env = "ONTAB_BATCH_WAIT", default_value = "0us", value_parser = parse_batch_wait)]
    pub batch_wait: Duration,

    /// How long a business's purchase queue may stay empty before its
    /// worker ends (the next purchase starts another).
    #[arg(long, env = "ONTAB_BATCH_WORKER_IDLE", default_value = "60s", value_parser = parse_worker_idle)]
    pub batch_worker_idle: Duration,

    /// Longest a client may take to send a request head, from connecting
    /// (or from its first byte after idling between requests).
    #[arg(long, env = "ONTAB_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Longest a kept-alive connection may wait for its next request.
    #[arg(long, env = "ONTAB_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Largest request head (request line and headers), in bytes; larger
    /// is answered 431.
    #[arg(long, env = "ONTAB_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,

    /// Most client connections open at once [default: the open-file limit
    /// minus the pool size minus 128, at least half the limit].
    #[arg(long, env = "ONTAB_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// How often expired holds are looked for and their expiry recorded.
    /// Decisions never wait for it (an expired hold counts for nothing at
    /// once); it bounds how long an expired hold's reservation rows stay
    /// behind. 0 disables the sweep (another instance runs it).
    #[arg(long, env = "ONTAB_HOLD_SWEEP_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub hold_sweep_interval: Duration,

    /// How often the event sequencer looks for committed events to number
    /// (it goes on at once only while its rounds come back full, a
    /// backlog). Bounds how long a committed change waits for its sequence,
    /// with one round's work. 0 disables sequencing here (another instance
    /// runs it).
    #[arg(long, env = "ONTAB_EVENT_SEQUENCE_INTERVAL", default_value = "10ms", value_parser = parse_duration)]
    pub event_sequence_interval: Duration,

    /// How often purchases past their due date are looked for
    /// (customer.overdue is emitted at most this long, plus one scan's
    /// work, after a purchase falls due). 0 disables the scan here.
    #[arg(long, env = "ONTAB_OVERDUE_SCAN_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub overdue_scan_interval: Duration,

    /// How long events are kept in the feed before retention prunes them
    /// (the oldest first).
    #[arg(long, env = "ONTAB_EVENT_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub event_retention: Duration,

    /// How often events older than the retention are pruned. 0 disables
    /// pruning here (another instance does it).
    #[arg(long, env = "ONTAB_EVENT_PRUNE_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub event_prune_interval: Duration,

    /// The connection string of the role the server's pool logs in as: one
    /// that is a member of ontab_app and nothing else (migrations/0003).
    /// DATABASE_URL then only migrates; without DATABASE_URL, serve migrates
    /// nothing and refuses a database whose migrations are not all applied.
    #[arg(long, env = "ONTAB_APP_DATABASE_URL", hide_env_values = true)]
    pub app_database_url: Option<String>,

    /// Production mode (also ONTAB_ENV=production): refuse to start, rather
    /// than warn, when the pool's login role can do more than ontab_app.
    #[arg(
        long,
        env = "ONTAB_ENV",
        num_args = 0,
        default_missing_value = "production",
        default_value = "development",
        value_parser = parse_environment
    )]
    pub production: bool,

    /// Lets webhook endpoints point at loopback, private and link-local
    /// addresses (local setups and tests). Off, such URLs are refused (422)
    /// and never connected to, also when a name resolves there later.
    #[arg(long, env = "ONTAB_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// Webhook attempts under way at once in this server; 0 leaves delivery
    /// to other instances.
    #[arg(long, env = "ONTAB_WEBHOOK_CONCURRENCY", default_value_t = 64)]
    pub webhook_concurrency: usize,

    /// Tests only: the waits between webhook attempts, comma-separated
    /// (the contract's 5s,5m,30m,2h,5h,10h,10h when unset).
    #[arg(long, env = "ONTAB_WEBHOOK_RETRY_SCHEDULE", hide = true, value_parser = parse_schedule)]
    pub webhook_retry_schedule: Option<Schedule>,

    /// Tests only: how long a receiver may take (15s).
    #[arg(long, env = "ONTAB_WEBHOOK_TIMEOUT", hide = true, default_value = "15s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,

    /// Tests only: how long a claimed delivery stays with its server after
    /// the timeout, before another may take it (15s).
    #[arg(long, env = "ONTAB_WEBHOOK_LEASE_MARGIN", hide = true, default_value = "15s", value_parser = parse_duration)]
    pub webhook_lease_margin: Duration,

    /// How often delivery and NATS publishing look for work when no
    /// notification comes.
    #[arg(long, env = "ONTAB_WEBHOOK_POLL_INTERVAL", hide = true, default_value = "500ms", value_parser = parse_duration)]
    pub webhook_poll_interval: Duration,

    /// NATS server (e.g. nats://127.0.0.1:4222): every event is also
    /// published to JetStream, stream ONTAB_EVENTS, subject
    /// ontab.<business_id>.<type>.
    #[arg(long, env = "ONTAB_NATS_URL")]
    pub nats_url: Option<String>,

    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// A retry schedule as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

fn parse_schedule(text: &str) -> Result<Schedule, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Schedule(Vec::new()));
    }
    text.split(',')
        .map(parse_duration)
        .collect::<Result<_, _>>()
        .map(Schedule)
}

/// ONTAB_ENV: `production` or `development`; anything else is refused, so
/// that a typo cannot turn production's refusals into warnings.
fn parse_environment(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "production" | "prod" => Ok(true),
        "development" | "dev" | "" => Ok(false),
        _ => Err(format!("`{text}`: use production or development")),
    }
}

impl ServeConfig {
    /// The pool as `serve` runs it.
    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            size: self.database.pool_size,
            wait: self.database.pool_timeout,
            statements: self.database.statements,
            statement_timeout: Some(self.statement_timeout.unwrap_or(self.request_timeout)),
        }
    }

    /// The use cases as `serve` runs them; `admin_token` is the token in
    /// force (configured, or this run's one-off token).
    pub fn app_config(&self, admin_token: Option<String>) -> AppConfig {
        let defaults = WebhookSettings::default();
        AppConfig {
            webhooks: WebhookSettings {
                allow_private: self.webhook_allow_private,
                retry_schedule: self
                    .webhook_retry_schedule
                    .clone()
                    .map_or(defaults.retry_schedule, |schedule| schedule.0),
                timeout: self.webhook_timeout,
                lease: self.webhook_timeout + self.webhook_lease_margin,
                poll: self.webhook_poll_interval,
                concurrency: self.webhook_concurrency,
            },
            admin_token,
            group_commit: Some(GroupCommitConfig {
                max_size: usize::from(self.batch_max_size),
                max_inflight: usize::from(self.batch_max_inflight),
                min_beside: usize::from(self.batch_min_beside),
                wait: self.batch_wait,
                idle: self.batch_worker_idle,
            }),
        }
    }
}

impl DatabaseConfig {
    /// The pool for one-off commands (a single connection).
    pub fn single_connection(&self) -> PoolOptions {
        PoolOptions {
            size: 1,
            wait: self.pool_timeout,
            statements: self.statements,
            statement_timeout: None,
        }
    }
}

fn parse_batch_wait(text: &str) -> Result<Duration, String> {
    let wait = parse_duration(text)?;
    if wait > Duration::from_millis(5) {
        return Err(format!(
            "`{text}`: at most 5ms, or lone purchases would pay for it"
        ));
    }
    Ok(wait)
}

fn parse_worker_idle(text: &str) -> Result<Duration, String> {
    let idle = parse_duration(text)?;
    if idle < Duration::from_millis(10) {
        return Err(format!("`{text}`: at least 10ms"));
    }
    Ok(idle)
}

/// Parses `250ms`, `2s`, `1m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 200us, 250ms, 2s, 1m or 30d"))?;
    match unit {
        "us" => Ok(Duration::from_micros(value)),
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" | "h" | "d" => {
            let seconds = match unit {
                "m" => 60,
                "h" => 3600,
                _ => 86_400,
            };
            value
                .checked_mul(seconds)
                .map(Duration::from_secs)
                .ok_or_else(|| format!("`{text}` is too long a duration"))
        }
        _ => Err(format!(
            "`{text}`: unknown unit `{unit}` (use us, ms, s, m, h or d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        config: ServeConfig,
    }

    #[test]
    fn production_mode_is_a_flag_or_ontab_env() {
        use clap::Parser;
        let production = |args: &[&str]| {
            Serve::try_parse_from(args.iter().copied()).map(|serve| serve.config.production)
        };
        // ONTAB_ENV may be set where the tests run; only the flag is
        // checked here, ONTAB_ENV's values below.
        assert_eq!(production(&["ontab", "--production"]).ok(), Some(true));
        assert_eq!(parse_environment("production"), Ok(true));
        assert_eq!(parse_environment("Production"), Ok(true));
        assert_eq!(parse_environment("development"), Ok(false));
        assert!(parse_environment("staging").is_err());
    }

    #[test]
    fn retry_schedules_parse_as_lists_of_durations() {
        assert_eq!(
            parse_schedule("100ms,1s"),
            Ok(Schedule(vec![
                Duration::from_millis(100),
                Duration::from_secs(1)
            ]))
        );
        assert_eq!(parse_schedule(""), Ok(Schedule(vec![])));
        assert!(parse_schedule("1s,soon").is_err());
    }

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }
}
