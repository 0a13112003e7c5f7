//! Who `serve`'s pool logs in as, and who keeps the schema.
//!
//! Each tenant transaction switches to `ontab_app` for that transaction
//! only (`db::tx`), so what SQL the server runs can do in the end is what
//! its login role can do: `RESET ROLE` returns to it. The guarantees that
//! rest on `ontab_app`'s grants (history and stock written only through the
//! use cases, every tenant behind row level security) bind the server only
//! when that login is `ontab_app` and nothing more.
//!
//! - `--app-database-url` names that login; DATABASE_URL, if also given,
//!   is the owner's and only migrates. With the app URL alone, `serve`
//!   migrates nothing (the login may not) and refuses a schema that is not
//!   exactly this binary's.
//! - DATABASE_URL alone: it migrates and pools, as before; if it is more
//!   than `ontab_app` (a superuser, BYPASSRLS, the tables' owner...) the
//!   start says so loudly, and production mode refuses to start.
//! - The private PostgreSQL: migrated by its superuser over the socket,
//!   served by `ontab_server`, a member of `ontab_app` made for it.

use anyhow::Context;

use crate::config::ServeConfig;
use crate::db::login::{PRIVATE_SERVER_ROLE, ensure_private_server_role};
use crate::db::tls::ConnectOptions;
use crate::db::{Db, Session, parse_url};

use super::Database;

/// How an operator gives `serve` a login that is `ontab_app` alone.
const FIX: &str = "create a login role that is only a member of ontab_app \
    (CREATE ROLE ontab_server LOGIN PASSWORD '...' IN ROLE ontab_app), give its connection \
    string to serve as --app-database-url (ONTAB_APP_DATABASE_URL), and keep the owner's \
    DATABASE_URL for `ontab migrate`";

/// The pool's login, once the schema is taken care of.
pub(super) struct PoolLogin {
    pub options: ConnectOptions,
    /// Whether `serve` migrated the schema itself; if not, it must check it.
    pub migrated: bool,
}

/// Migrates as the owner where there is one, and answers what the pool
/// logs in as. `database` is `None` when serve has only the app's login.
pub(super) async fn prepare(
    config: &ServeConfig,
    database: Option<&Database>,
) -> anyhow::Result<PoolLogin> {
    let Some(database) = database else {
        let url = config
            .app_database_url
            .as_deref()
            .context("no database to serve: set DATABASE_URL or --app-database-url")?;
        return Ok(PoolLogin {
            options: parse_url(url).context("--app-database-url (ONTAB_APP_DATABASE_URL)")?,
            migrated: false,
        });
    };
    let applied = database.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    let options = if let Some(url) = &config.app_database_url {
        parse_url(url).context("--app-database-url (ONTAB_APP_DATABASE_URL)")?
    } else if database.is_private() {
        let owner = parse_url(&database.url)?;
        let session = Session::open(&owner).await?;
        ensure_private_server_role(&session.client)
            .await
            .context("creating the private PostgreSQL's server role")?;
        let mut options = owner;
        options.config.user(PRIVATE_SERVER_ROLE);
        options
    } else {
        parse_url(&database.url)?
    };
    Ok(PoolLogin {
        options,
        migrated: true,
    })
}

/// Checks the pool's login before anything is served: the schema, when
/// serve could not migrate it, and what the role may do.
pub(super) async fn check(db: &Db, login: &PoolLogin, production: bool) -> anyhow::Result<()> {
    // The pool's first session: a login that fails says so here, before
    // the schema is blamed.
    let role = db
        .login_role()
        .await
        .context("the database pool cannot log in")?;
    if !login.migrated {
        db.verify_schema().await.context(
            "serve has only --app-database-url, whose login role may not migrate, \
             and the database is not ready for it",
        )?;
    }
    let excess = role.excess();
    if excess.is_empty() {
        tracing::info!(role = %role.name, "the pool logs in as a member of ontab_app and nothing more");
        return Ok(());
    }
    let why = excess.join("; ");
    if production {
        anyhow::bail!(
            "refusing to start in production mode: the database pool's login role can do more \
             than ontab_app, which weakens ontab's guarantees: {why}. To fix it, {FIX}"
        );
    }
    tracing::warn!(
        role = %role.name,
        "THE DATABASE POOL'S LOGIN ROLE CAN DO MORE THAN ontab_app, which weakens ontab's \
         guarantees: {why}. To fix it, {FIX}. In production mode (--production, \
         ONTAB_ENV=production) serve refuses to start like this."
    );
    Ok(())
}
