//! ontab: many businesses sell to their customers on credit from one service
//! and one PostgreSQL database.
//!
//! The layers, and the only direction their dependencies go:
//!
//! ```text
//!   main.rs, cli ──> server ──> http ──> app ──> db ──> domain
//!                                         │              ▲
//!                                         └──────────────┘
//! ```
//!
//! - [`http`]: the HTTP edge. Router, auth extractors, problem+json
//!   ([`http::problem`], the one place errors become answers), and one
//!   module per resource that parses a request, calls a use case and maps
//!   its outcome.
//! - [`app`]: the use cases, one module each (purchases, payments,
//!   returns…), with the transaction runner (deadline up to COMMIT,
//!   retries), idempotency and group commit. Called by the HTTP edge, the
//!   CLI and background work alike; no axum, no status codes.
//! - [`db`]: the pool, the tenant transaction, the migrator, and one module
//!   per use case holding its SQL. The invariants themselves live in
//!   `migrations/` (constraints, triggers, row level security, functions).
//! - [`domain`]: values that parse rather than validate, order lines, the
//!   records, refusals and error codes. No I/O, no edge crates.
//! - [`server`] builds all of it for `ontab serve` (and for the tests);
//!   [`cli`] runs the other subcommands; [`config`] is the typed
//!   configuration; [`embedded_pg`] the private PostgreSQL for a first run;
//!   [`health`] the container health check.
//!
//! The purchase path, for instance: `http::purchases::create` →
//! `app::purchases::buy` (→ `app::group_commit` under load) →
//! `db::purchase::execute` → `ontab_purchase` in
//! `migrations/0004_use_cases.sql`.

pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod embedded_pg;
pub mod health;
pub mod http;
pub mod server;
pub mod telemetry;
