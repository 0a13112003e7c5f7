//! The `ontab` command line: parses arguments and calls into the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ontab::config::{DatabaseConfig, ServeConfig};

#[derive(Parser)]
#[command(
    name = "ontab",
    version,
    about = "Multi-tenant credit purchases on PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the HTTP API.
    Serve(ServeConfig),
    /// Apply pending migrations and exit.
    Migrate(DatabaseConfig),
    /// Manage businesses without the admin token.
    #[command(subcommand)]
    Businesses(BusinessesCommand),
    /// Check every invariant of every business (or one); exit 1 on any violation.
    Audit(ontab::audit::AuditArgs),
    /// Exit 0 if `ontab serve` at --listen answers GET /healthz with 200, else 1
    /// (a container health check with no shell or curl).
    Health(ontab::health::HealthArgs),
}

#[derive(Subcommand)]
enum BusinessesCommand {
    /// Create a business and print it with its first API key (shown once).
    Create(ontab::server::CreateBusinessArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ontab::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ontab: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(config) => ontab::server::serve(config).await,
            Command::Migrate(config) => ontab::server::migrate(config).await,
            Command::Audit(args) => ontab::audit::run(args).await,
            Command::Health(args) => ontab::health::check(&args).map_err(Into::into),
            Command::Businesses(BusinessesCommand::Create(args)) => {
                ontab::server::create_business(args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ontab: {error:#}");
            ExitCode::FAILURE
        }
    }
}
