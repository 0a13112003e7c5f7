//! Black-box tests of ontab over HTTP and SQL against a real PostgreSQL.
//! One test binary, so the migrated template is built once per run.

#![expect(
    clippy::expect_used,
    reason = "a test fails by panicking, and expect says what it expected"
)]

mod helpers;
mod receiver;
mod support;

mod api_keys;
mod audit;
mod auth;
mod batch;
mod businesses;
mod citus;
mod commit_outcome;
mod concurrency;
mod connections;
mod credit_controls;
mod customers;
mod events;
mod faults;
mod first_run;
mod guards;
mod health;
mod holds;
mod hostile;
mod idempotency;
mod isolation;
mod least_privilege;
mod ledger;
mod lossy_proxy;
mod migrations;
mod nats;
mod openapi;
mod openapi_contract;
mod openapi_snapshot;
mod ops;
mod orders;
mod pagination;
mod payments;
mod privileges;
mod process;
mod products;
mod purchases;
mod reports;
mod requests;
mod returns;
mod revocation;
mod slow_clients;
mod smoke;
mod sql;
mod statements;
mod stock;
mod stored_refusals;
mod tls;
mod webhooks;
