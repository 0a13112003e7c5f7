//! ontab: many businesses sell to their customers on credit from one service
//! and one PostgreSQL database.
//!
//! Layout (the arrows point one way: `http` → `domain`, `db`; `db` → `domain`):
//! - [`config`]: the one typed configuration (flags with env fallbacks).
//! - [`http`]: the HTTP edge: router, auth extractors, problem+json errors,
//!   one module per resource.
//! - [`domain`]: types and rules with no I/O: names, money, order lines and
//!   the refusals of the contract.
//! - [`db`]: the pool, tenant-scoped transactions, migrations, and one
//!   module per use case with its SQL. The invariants themselves live in
//!   `migrations/` (constraints, triggers, row level security).
//! - [`embedded_pg`]: the private PostgreSQL used when no `DATABASE_URL` is set.
//! - [`audit`]: `ontab audit`, which checks every invariant of the stored data.
//! - [`server`]: wiring it all together for `ontab serve`.
//! - [`health`]: `ontab health`, the container health check.

pub mod audit;
pub mod config;
pub mod db;
pub mod domain;
pub mod embedded_pg;
pub mod health;
pub mod http;
pub mod server;
pub mod telemetry;
