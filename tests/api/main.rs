//! Black-box tests of ontab over HTTP and SQL against a real PostgreSQL.
//! One test binary, so the migrated template is built once per run.

mod helpers;

mod audit;
mod batch;
mod commit_outcome;
mod concurrency;
mod connections;
mod contract;
mod faults;
mod first_run;
mod guards;
mod health;
mod holds;
mod hostile;
mod idempotency;
mod isolation;
mod least_privilege;
mod lossy_proxy;
mod migrations;
mod openapi;
mod ops;
mod privileges;
mod process;
mod reports;
mod revocation;
mod slow_clients;
mod smoke;
mod stored_refusals;
mod tls;
