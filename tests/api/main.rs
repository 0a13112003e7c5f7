//! Black-box tests of ontab over HTTP and SQL against a real PostgreSQL.
//! One test binary, so the migrated template is built once per run.

mod helpers;

mod audit;
mod concurrency;
mod contract;
mod guards;
mod idempotency;
mod isolation;
mod openapi;
mod ops;
mod process;
mod reports;
mod smoke;
