//! The `ontab` command line: each subcommand is a thin shell over the
//! library (`server`, `app`), printing for a human.

use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::app::{self, App, AppConfig, AppError};
use crate::config::{DatabaseConfig, ServeConfig};
use crate::db::{Db, Session};
use crate::server::{self, Database};

#[derive(Parser)]
#[command(
    name = "ontab",
    version,
    about = "Multi-tenant credit purchases on PostgreSQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the HTTP API.
    Serve(Box<ServeConfig>),
    /// Apply pending migrations and exit.
    Migrate(DatabaseConfig),
    /// Manage businesses without the admin token.
    #[command(subcommand)]
    Businesses(BusinessesCommand),
    /// Check every invariant of every business (or one); exit 1 on any violation.
    Audit(AuditArgs),
    /// Exit 0 when the server at ONTAB_LISTEN answers /healthz (for container
    /// health checks; needs no shell or curl in the image).
    Health(crate::health::HealthArgs),
}

#[derive(Subcommand)]
pub enum BusinessesCommand {
    /// Create a business and print it with its first API key (shown once).
    Create(CreateBusinessArgs),
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
    /// The payment terms, in days, its new customers get (0..=365).
    #[arg(long, default_value_t = 30)]
    pub payment_terms_days: i64,
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Arguments of `ontab audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Audit only this business.
    #[arg(long)]
    pub business: Option<Uuid>,
    /// Print at most this many violations per check and business (all are
    /// counted).
    #[arg(long, default_value_t = 20)]
    pub max_listed: usize,
}

/// Runs one command to its end.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => server::serve(*config).await,
        Command::Migrate(config) => migrate(config).await,
        Command::Audit(args) => audit(args).await,
        Command::Businesses(BusinessesCommand::Create(args)) => create_business(args).await,
        Command::Health(args) => crate::health::check(&args).map_err(Into::into),
    }
}

async fn migrate(config: DatabaseConfig) -> anyhow::Result<()> {
    let database = Database::open(&config).await?;
    let outcome = database.migrate().await;
    database.close().await?;
    match outcome?.as_slice() {
        [] => println!("database is up to date"),
        applied => println!("applied migrations {applied:?}"),
    }
    Ok(())
}

/// A use case's refusal as one readable line for a terminal.
fn for_humans(error: AppError) -> anyhow::Error {
    match error {
        AppError::Invalid(errors) => {
            let reasons: Vec<String> = errors
                .iter()
                .map(|e| format!("--{}: {}", e.field, e.message))
                .collect();
            anyhow::anyhow!(reasons.join("; "))
        }
        other => anyhow::anyhow!("{other}"),
    }
}

/// Creates a business through the same use case as the admin endpoint and
/// prints it as JSON, API key included (logs go to stderr, so stdout can be
/// piped to jq).
async fn create_business(args: CreateBusinessArgs) -> anyhow::Result<()> {
    let database = Database::open(&args.database).await?;
    let created = async {
        database.migrate().await?;
        let db = Db::connect(
            crate::db::parse_url(&database.url)?,
            args.database.single_connection(),
        )?;
        let app = App::new(db, AppConfig::default());
        let request = app::businesses::NewBusiness {
            name: args.name.clone(),
            currency: Some(args.currency.clone()),
            payment_terms_days: Some(args.payment_terms_days.into()),
        };
        app::businesses::create(&app, app::Actor::Cli, request)
            .await
            .map_err(for_humans)
    }
    .await;
    database.close().await?;
    let created = created?;
    let shown = serde_json::json!({
        "id": created.business.id,
        "name": created.business.name,
        "currency": created.business.currency,
        "payment_terms_days": created.business.payment_terms_days,
        "created_at": created.business.created_at,
        "api_key": { "id": created.api_key_id, "key": created.api_key },
    });
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// `ontab audit`: prints the report; an error (exit status 1) when anything
/// is broken.
async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let database = Database::open(&args.database).await?;
    let outcome = async {
        let mut session = Session::open(&crate::db::parse_url(&database.url)?).await?;
        app::audit::audit(&mut session.client, args.business)
            .await
            .map_err(for_humans)
    }
    .await;
    database.close().await?;
    let report = outcome?;
    for (name, rule) in app::audit::checks() {
        let found: Vec<_> = report
            .violations
            .iter()
            .filter(|v| v.check == name)
            .collect();
        let verdict = if found.is_empty() {
            "ok".to_owned()
        } else {
            format!("{} VIOLATION(S)", found.len())
        };
        println!("{name:<13} {verdict:<16} {rule}");
        for violation in found.iter().take(args.max_listed) {
            println!(
                "    business {} [{}] {}: {}",
                violation.business_id, violation.check, violation.subject, violation.detail
            );
        }
        if found.len() > args.max_listed {
            println!("    … and {} more", found.len() - args.max_listed);
        }
    }
    println!(
        "audited {} business(es): {} violation(s)",
        report.businesses,
        report.violations.len()
    );
    if report.violations.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} invariant violation(s) found (listed above)",
            report.violations.len()
        )
    }
}
