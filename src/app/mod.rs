//! The use cases: what ontab does, whoever asks. The HTTP edge, the CLI and
//! background work all call these; none of them reaches the database any
//! other way. No axum, no status codes: answers are records or an
//! [`AppError`], which each edge renders its own way.
//!
//! Every use case runs in a tenant transaction opened by [`App`], which
//! also enforces the request's [`Deadline`] up to the moment COMMIT is sent
//! and waits for COMMIT's answer after that ([`transaction`]). Use cases
//! that move money or stock run at most once per Idempotency-Key
//! ([`idempotency`]); purchases are group-committed under load
//! ([`group_commit`]).

pub mod api_keys;
pub mod audit;
pub mod auth;
mod bounded_cache;
pub mod businesses;
pub mod customers;
mod error;
pub mod events;
pub mod group_commit;
pub mod holds;
pub mod idempotency;
mod key_cache;
pub mod nats;
pub mod orders;
pub mod page {
    //! Keyset pagination, as the lists take and answer it.
    pub use crate::db::page::{CreatedKey, Listed, Page};
}
pub mod payments;
pub mod products;
pub mod purchases;
pub mod reports;
pub mod returns;
pub mod statements;
pub mod stock;
mod transaction;
pub mod webhooks;
pub mod write_offs;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

pub use error::{AppError, INVALID_API_KEY};
pub use transaction::Step;

use crate::db::Db;
use group_commit::{GroupCommit, GroupCommitConfig};
use key_cache::KeyCache;

/// API keys remembered per process. A few thousand entries of 64 bytes
/// (under half a megabyte) hold every key in use for any realistic number
/// of businesses on one instance; past that, lookups simply come back.
const KEY_CACHE_CAPACITY: usize = 4096;

/// Who a use case acts for: a business, through one of its API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant {
    pub business_id: Uuid,
    pub key_id: Uuid,
}

/// Who does something the service records (customers' history): an API
/// key, or the operator at the admin endpoint or the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    ApiKey(Uuid),
    Admin,
    Cli,
    /// The service's own background work (expiring holds).
    System,
}

impl Actor {
    /// As recorded: the key's id, or `admin` / `cli`.
    pub fn recorded(self) -> String {
        match self {
            Actor::ApiKey(id) => id.to_string(),
            Actor::Admin => "admin".to_owned(),
            Actor::Cli => "cli".to_owned(),
            Actor::System => "system".to_owned(),
        }
    }
}

/// By when a request's work must have committed or given up. Work still
/// running at the deadline is rolled back and answered "unavailable,
/// nothing written"; once COMMIT is sent, the request waits for its answer
/// whatever the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    pub fn passed(self) -> bool {
        Instant::now() >= self.0
    }
}

/// How the use cases are set up.
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    /// Enables the operator's endpoint for creating businesses.
    pub admin_token: Option<String>,
    /// Group commit of purchases; `None` runs each in its own transaction.
    pub group_commit: Option<GroupCommitConfig>,
    /// How webhooks are checked and delivered.
    pub webhooks: webhooks::WebhookSettings,
}

/// The use cases' shared state: the database pool, the API key cache, the
/// operator's token hash and the group-commit queues.
pub struct App {
    db: Db,
    keys: KeyCache,
    admin_token_sha256: Option<[u8; 32]>,
    group_commit: Option<Arc<GroupCommit>>,
    /// Wakes the feed's long-polling readers.
    events: events::EventWaker,
    webhooks: webhooks::WebhookSettings,
}

impl App {
    pub fn new(db: Db, config: AppConfig) -> Arc<Self> {
        let group_commit = config
            .group_commit
            .filter(|settings| settings.max_size > 1)
            .map(GroupCommit::new);
        Arc::new(Self {
            keys: KeyCache::new(KEY_CACHE_CAPACITY),
            admin_token_sha256: config.admin_token.as_deref().map(auth::token_hash),
            db,
            group_commit,
            events: events::EventWaker::default(),
            webhooks: config.webhooks,
        })
    }

    /// The pool, for operations: readiness and pool metrics.
    pub fn db(&self) -> &Db {
        &self.db
    }
}
