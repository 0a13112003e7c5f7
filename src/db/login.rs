//! Who the pool logs in as, and what that role could do beyond `ontab_app`.
//!
//! Every tenant transaction switches to `ontab_app` (`tx.rs`), but only for
//! that transaction: `RESET ROLE`, or any statement outside a transaction,
//! runs as the login role. So the guarantees that rest on `ontab_app`'s
//! grants hold against SQL the server runs (a bug, an injection) only if
//! the login role itself has nothing more.

use super::sql::{Column, Statement, statement};
use super::{Db, DbError, column};

/// Everything the session's login role may do beyond `ontab_app`, counting
/// the roles it may `SET ROLE` to (membership, direct or not): a member of
/// a superuser role is as good as one. `session_user`, not `current_user`:
/// the check must see the login, whatever role a session switched to.
const LOGIN_ROLE: &str = "\
    SELECT r.rolname::text AS name,
           bool_or(m.rolsuper) AS superuser,
           bool_or(m.rolbypassrls) AS bypass_rls,
           bool_or(m.rolcreaterole) AS create_role,
           coalesce(array_agg(m.rolname::text ORDER BY m.rolname)
                        FILTER (WHERE m.oid <> r.oid AND m.rolname <> 'ontab_app'),
                    '{}') AS other_roles,
           coalesce(bool_or(m.oid = (SELECT c.relowner FROM pg_class c
                                      WHERE c.oid = to_regclass('customers'))), false)
               AS owns_tables,
           has_database_privilege(r.oid, current_database(), 'TEMPORARY') AS temporary,
           has_database_privilege(r.oid, current_database(), 'CREATE') AS create_schema
      FROM pg_roles r
      JOIN pg_roles m ON pg_has_role(r.oid, m.oid, 'MEMBER')
     WHERE r.rolname = session_user
     GROUP BY r.oid, r.rolname";

/// The login role of the private PostgreSQL's server (`embedded_pg`): a
/// member of `ontab_app` and nothing else. The socket trusts local users,
/// so it has no password. Created once, by the superuser after migrating;
/// a run that races another here finds it made.
pub const PRIVATE_SERVER_ROLE: &str = "ontab_server";

const ENSURE_PRIVATE_SERVER_ROLE: &str = "    DO $$
    BEGIN
        BEGIN
            CREATE ROLE ontab_server LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
                IN ROLE ontab_app;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
        IF NOT pg_has_role('ontab_server', 'ontab_app', 'MEMBER') THEN
            GRANT ontab_app TO ontab_server;
        END IF;
    END
    $$";

/// Creates [`PRIVATE_SERVER_ROLE`] if it is missing, as the superuser of a
/// migrated cluster (`ontab_app` exists).
pub async fn ensure_private_server_role(client: &tokio_postgres::Client) -> Result<(), DbError> {
    client.batch_execute(ENSURE_PRIVATE_SERVER_ROLE).await?;
    Ok(())
}

/// The pool's login role and what it could do that `ontab_app` cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRole {
    pub name: String,
    pub superuser: bool,
    pub bypass_rls: bool,
    pub create_role: bool,
    /// Owns the schema's tables (or may become their owner).
    pub owns_tables: bool,
    /// May create temporary tables in this database (PUBLIC may, unless
    /// revoked: migration 0028 does, when its migrator may).
    pub temporary: bool,
    /// May create schemas in this database.
    pub create_schema: bool,
    /// Roles it may become besides itself and `ontab_app`.
    pub other_roles: Vec<String>,
}

impl LoginRole {
    /// Why this login weakens the guarantees, one reason each; empty when
    /// it is `ontab_app` and nothing more.
    pub fn excess(&self) -> Vec<String> {
        let name = &self.name;
        if self.superuser {
            // It may become every role and do anything: the rest would
            // only repeat that.
            return vec![format!(
                "`{name}` is a superuser: neither row level security nor the grants bind it, \
                 so SQL the server runs could RESET ROLE and then read every tenant, rewrite \
                 history or move stock without a reason"
            )];
        }
        let mut reasons = Vec::new();
        if self.bypass_rls {
            reasons.push(format!(
                "`{name}` has BYPASSRLS: after RESET ROLE, SQL the server runs sees and writes \
                 every tenant's rows"
            ));
        }
        if self.create_role {
            reasons.push(format!(
                "`{name}` has CREATEROLE: it can grant itself ontab_writer and write history \
                 directly"
            ));
        }
        if self.owns_tables {
            reasons.push(format!(
                "`{name}` owns the tables: it can drop their guards and turn row level \
                 security off"
            ));
        }
        if self.temporary {
            reasons.push(format!(
                "`{name}` may create temporary tables: one named like an ontab table hides it, \
                 in that session, from every trigger whose table it names (PostgreSQL looks in \
                 pg_temp first), so SQL the server runs could make a guard read its own copy; \
                 `ontab migrate` revokes TEMPORARY from PUBLIC when it owns the database, \
                 otherwise run REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC as its owner"
            ));
        }
        if self.create_schema {
            reasons.push(format!(
                "`{name}` may create schemas: a look-alike table put first on its search_path \
                 hides the real one from the guards its own writes fire"
            ));
        }
        if !self.other_roles.is_empty() {
            reasons.push(format!(
                "`{name}` may also become {}: SQL the server runs could SET ROLE to them",
                self.other_roles.join(", ")
            ));
        }
        reasons
    }
}

impl Db {
    /// The pool's login role, as a pooled session sees it.
    pub async fn login_role(&self) -> Result<LoginRole, DbError> {
        let rows = self.query_untenanted(LOGIN_ROLE, &[]).await?;
        let row = rows
            .first()
            .ok_or_else(|| DbError::Decode("the login role is not in pg_roles".into()))?;
        Ok(LoginRole {
            name: column(row, "name")?,
            superuser: column(row, "superuser")?,
            bypass_rls: column(row, "bypass_rls")?,
            create_role: column(row, "create_role")?,
            owns_tables: column(row, "owns_tables")?,
            temporary: column(row, "temporary")?,
            create_schema: column(row, "create_schema")?,
            other_roles: column(row, "other_roles")?,
        })
    }

    /// Checks over a pooled session, changing nothing, that the schema is
    /// exactly this binary's (`migrate::verify`): what `serve` does instead
    /// of migrating when its login role may not.
    pub async fn verify_schema(&self) -> Result<(), DbError> {
        let client = self.client().await?;
        super::migrate::verify(&client).await
    }
}

pub(super) const STATEMENTS: &[Statement] = &[statement!(
    LOGIN_ROLE,
    &[],
    &[
        Column::named::<String>("name"),
        Column::named::<bool>("superuser"),
        Column::named::<bool>("bypass_rls"),
        Column::named::<bool>("create_role"),
        Column::named::<bool>("owns_tables"),
        Column::named::<Vec<String>>("other_roles"),
        Column::named::<bool>("temporary"),
        Column::named::<bool>("create_schema"),
    ]
)];

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> LoginRole {
        LoginRole {
            name: "ontab_server".into(),
            superuser: false,
            bypass_rls: false,
            create_role: false,
            owns_tables: false,
            temporary: false,
            create_schema: false,
            other_roles: Vec::new(),
        }
    }

    #[test]
    fn a_member_of_ontab_app_alone_has_nothing_in_excess() {
        assert!(role().excess().is_empty());
    }

    #[test]
    fn each_excess_is_named_with_its_consequence() {
        let everything = LoginRole {
            bypass_rls: true,
            create_role: true,
            owns_tables: true,
            temporary: true,
            create_schema: true,
            other_roles: vec!["ontab_writer".into()],
            ..role()
        };
        let reasons = everything.excess();
        assert_eq!(reasons.len(), 6, "{reasons:#?}");
        for (reason, says) in reasons.iter().zip([
            "BYPASSRLS",
            "CREATEROLE",
            "owns the tables",
            "temporary tables",
            "create schemas",
            "ontab_writer",
        ]) {
            assert!(reason.contains(says), "{reason}");
            assert!(reason.contains("`ontab_server`"), "{reason}");
        }
    }

    #[test]
    fn a_superuser_is_named_once() {
        let superuser = LoginRole {
            superuser: true,
            bypass_rls: true,
            owns_tables: true,
            other_roles: vec!["ontab_writer".into(), "pg_monitor".into()],
            ..role()
        };
        let reasons = superuser.excess();
        assert_eq!(reasons.len(), 1, "{reasons:#?}");
        assert!(reasons[0].contains("is a superuser"), "{}", reasons[0]);
    }
}
