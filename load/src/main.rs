//! `ontab-load`: drives a running ontab over HTTP with N keep-alive clients
//! for T seconds, prints throughput, latency percentiles and outcome counts,
//! then audits every invariant through the API and exits non-zero on any
//! violation.
//!
//! Layout: `http` (one connection per client) → `api` (setup and reads) →
//! `scenarios/*` (one module per scenario: setup + workload) → `driver`
//! (the timed loop, latency histograms) → `book` (what the client saw
//! accepted) → `audit` (final state vs invariants and book) → `report`.
//! `bulk` is the only SQL: loading a long ledger for `history`. `webhook`
//! is a local receiver measuring event delivery (`--webhook`).

mod api;
mod audit;
mod book;
mod bulk;
mod cpu;
mod driver;
mod hooks;
mod http;
mod report;
mod scenarios;
mod util;
mod webhook;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::api::Api;
use crate::driver::Timing;
use crate::http::Endpoint;
use crate::scenarios::{Ctx, Knobs, Scenario};

#[derive(Parser, Debug)]
#[command(
    name = "ontab-load",
    version,
    about = "Load generator and invariant audit for a running ontab"
)]
struct Cli {
    /// What to run.
    #[arg(long, value_enum, default_value_t = Scenario::Uncontended)]
    scenario: Scenario,

    /// ontab's base URL; must be a loopback address.
    #[arg(long, env = "ONTAB_URL", default_value = "http://127.0.0.1:8080")]
    base_url: String,

    /// The server's ONTAB_ADMIN_TOKEN, to create the scenario's businesses.
    #[arg(long, env = "ONTAB_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,

    /// Concurrent clients, each with one keep-alive connection.
    #[arg(long, default_value_t = 64)]
    clients: usize,

    /// Measured time.
    #[arg(long, default_value = "30s", value_parser = util::parse_duration)]
    duration: Duration,

    /// Load before the measured time (not in latency or throughput, but in
    /// the outcome counts and the audit).
    #[arg(long, default_value = "0s", value_parser = util::parse_duration)]
    warmup: Duration,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,

    /// Customers (uncontended; mixed splits them over its tenants).
    #[arg(long, default_value_t = 1000)]
    customers: usize,

    /// Products (uncontended; mixed splits them over its tenants).
    #[arg(long, default_value_t = 1000)]
    products: usize,

    /// Tenants for `mixed`.
    #[arg(long, default_value_t = 10)]
    tenants: usize,

    /// Initial stock of the hot product (sellout defaults to 500; with
    /// hot-product, setting it makes stock run out too).
    #[arg(long)]
    stock: Option<i64>,

    /// Quantity per hot-product / sellout purchase.
    #[arg(long, default_value_t = 1)]
    quantity: i64,

    /// The hot customer's credit limit in cents (default 1,000,000: 10,000
    /// purchases of 100).
    #[arg(long)]
    credit_limit: Option<i64>,

    /// Ledger entries bulk-loaded for `history`.
    #[arg(long, default_value_t = 1_000_000)]
    history_entries: u64,

    /// Pending holds `hot-product-held` makes on the hot product before the
    /// run (one unit each, spread over its customers, expiring in 30 days).
    #[arg(long, default_value_t = 1000)]
    pending_holds: usize,

    /// The server's database (loopback only): needed by `history` to load
    /// the long ledger, and used by the audit to check ledgers too long to
    /// page through HTTP.
    #[arg(long, env = "ONTAB_LOAD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// Seed for every random choice, so runs are repeatable.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Give up on one request after this long (counted as a transport error).
    #[arg(long, default_value = "30s", value_parser = util::parse_duration)]
    request_timeout: Duration,

    /// Runtime threads for this tool. One is plenty for 64 clients and
    /// leaves the other core to the server and PostgreSQL.
    #[arg(long, default_value_t = 1)]
    threads: usize,

    /// Connections used for setup and the audit.
    #[arg(long, default_value_t = 16)]
    setup_connections: usize,

    /// Count any 503 or transport error as a violation (for CI smoke runs,
    /// whose few clients should never be shed or time out).
    #[arg(long)]
    strict: bool,

    /// Measure this process's CPU time over the measured window, as
    /// NAME=PID (e.g. `server=1234`); repeatable. Linux /proc only.
    #[arg(long, value_parser = |s: &str| cpu::Probe::parse(s, false))]
    cpu_pid: Vec<cpu::Probe>,

    /// Measure a PostgreSQL postmaster and all its children (backends,
    /// background processes, reaped ones too), as NAME=PID; repeatable.
    #[arg(long, value_parser = |s: &str| cpu::Probe::parse(s, true))]
    cpu_tree: Vec<cpu::Probe>,

    /// Clock ticks per second of /proc's times (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clock_ticks: u64,

    /// Subscribe each business of the run to `purchase.created` at a
    /// receiver in this process (127.0.0.1; the server needs
    /// --webhook-allow-private) and report the events' delivery lag. After
    /// the load, waits up to --webhook-drain for every purchase's event.
    #[arg(long)]
    webhook: bool,

    /// With --webhook: how long to wait after the load for the last events.
    #[arg(long, default_value = "120s", value_parser = util::parse_duration)]
    webhook_drain: Duration,

    /// A shell command run when the measured window opens (after
    /// --warmup), e.g. to zero a profiler's counters (bench/profile.sh).
    #[arg(long)]
    at_window_start: Option<String>,
    /// A shell command run when the measured window closes, e.g. to dump
    /// a profiler's counters.
    #[arg(long)]
    at_window_end: Option<String>,
    /// Wait up to this long for GET /readyz to answer 200 before starting.
    #[arg(long, default_value = "0s", value_parser = util::parse_duration)]
    wait_ready: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ontab-load: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("ontab-load: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Returns whether the audit passed.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    anyhow::ensure!(cli.clients >= 1, "--clients must be at least 1");
    let endpoint = Arc::new(Endpoint::resolve(&cli.base_url).await?);
    let api = Api {
        endpoint: endpoint.clone(),
        timeout: cli.request_timeout,
        parallelism: cli.setup_connections,
    };
    wait_ready(&api, cli.wait_ready).await?;
    let ctx = Ctx {
        api: api.clone(),
        admin_token: cli.admin_token.clone(),
        knobs: Knobs {
            clients: cli.clients,
            seed: cli.seed,
            customers: cli.customers,
            products: cli.products,
            tenants: cli.tenants,
            stock: cli.stock,
            quantity: cli.quantity,
            credit_limit: cli.credit_limit,
            history_entries: cli.history_entries,
            database_url: cli.database_url.clone(),
            pending_holds: cli.pending_holds,
        },
    };
    let setup_started = Instant::now();
    let plan = scenarios::plan(cli.scenario, &ctx).await?;
    let receiver = if cli.webhook {
        anyhow::ensure!(
            matches!(
                cli.scenario,
                Scenario::Uncontended
                    | Scenario::HotProduct
                    | Scenario::Sellout
                    | Scenario::HotCustomer
            ),
            "--webhook counts purchase events: use it with uncontended, hot-product, sellout or hot-customer"
        );
        let receiver = webhook::Receiver::start().await?;
        for tenant in &plan.audit.tenants {
            receiver.subscribe(&api, &tenant.tenant).await?;
        }
        Some(receiver)
    } else {
        None
    };
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    if !cli.json {
        eprintln!(
            "ontab-load: {} set up in {setup_seconds:.1} s; running {} clients",
            cli.scenario.name(),
            cli.clients
        );
    }
    let timing = Timing {
        warmup: cli.warmup,
        duration: cli.duration,
        request_timeout: cli.request_timeout,
    };
    let probes: Vec<cpu::Probe> = cli.cpu_pid.iter().chain(&cli.cpu_tree).cloned().collect();
    let probes = (!probes.is_empty()).then_some((probes, cli.clock_ticks));
    let hooks = hooks::WindowHooks {
        at_start: cli.at_window_start.clone(),
        at_end: cli.at_window_end.clone(),
    };
    let result = driver::run(endpoint, plan.workloads, timing, probes, hooks).await?;

    let mut findings =
        audit::audit(&api, &plan.audit, &result.book, cli.database_url.as_deref()).await?;
    audit::check_outcomes(&result.outcomes, &plan.audit, cli.strict, &mut findings);
    findings
        .violations
        .splice(0..0, result.book.violations.iter().cloned());
    let mut facts = plan.facts;
    if let Some(receiver) = &receiver {
        // Only purchases in these scenarios: one ledger entry, one event each.
        let customers = result.book.customers.values();
        let expected = customers.clone().map(|book| book.entries).sum();
        let uncertain = customers.map(|book| book.maybe_entries).sum();
        let (delivery, missing) = receiver.drain(expected, uncertain, cli.webhook_drain).await;
        facts.insert("webhook".into(), delivery);
        findings.violations.extend(missing);
    }
    facts.insert(
        "setup_seconds".into(),
        serde_json::json!((setup_seconds * 10.0).round() / 10.0),
    );
    let summary = report::summarize(
        cli.scenario.name(),
        cli.clients,
        cli.warmup.as_secs_f64(),
        &result,
        facts,
        findings,
    );
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", report::text(&summary));
    }
    if !summary.ok {
        eprintln!(
            "ontab-load: AUDIT FAILED for {}: {} violation(s)",
            summary.scenario,
            summary.violations.len()
        );
    }
    Ok(summary.ok)
}

/// Polls GET /readyz until it answers 200 or the wait is over.
async fn wait_ready(api: &Api, wait: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    let mut conn = api.conn();
    loop {
        match conn
            .send(hyper::Method::GET, "/readyz", "", bytes::Bytes::new())
            .await
        {
            Ok(reply) if reply.status == 200 => return Ok(()),
            outcome => {
                if Instant::now() >= deadline {
                    let seen = match outcome {
                        Ok(reply) => format!("status {}", reply.status),
                        Err(error) => error.label().to_owned(),
                    };
                    anyhow::bail!("{} is not ready ({seen})", api_url(api));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn api_url(api: &Api) -> String {
    format!("{:?}", api.endpoint)
}
