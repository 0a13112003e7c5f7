-- No temporary table can stand in for one of ontab's tables.
--
-- PostgreSQL looks up an unqualified table name in the session's temporary
-- schema first, before pg_catalog and public, unless the search_path names
-- pg_temp somewhere else. That holds inside a SECURITY DEFINER function
-- too, whose `SET search_path = pg_catalog, public` left pg_temp out, and
-- in every trigger. Every role may create temporary tables by default
-- (PUBLIC has TEMPORARY on a new database). So a session of the server's
-- login could shadow the real tables for the use cases and the guards:
-- a temporary `customers` holding its business's customers with a larger
-- credit limit (granted to PUBLIC, so that ontab_writer may read it) made
-- ontab_purchase and the ledger's chain guard read the copy, and a
-- purchase of 500 committed against a limit of 100. Found by hand on
-- 0027; reproduced by tests/api/privileges.rs.
--
-- 1. TEMPORARY on the database is revoked from PUBLIC by every run of the
--    migrator (src/db/migrate.rs, after the migrations), not by this
--    file: a database's privileges are not part of its schema, so a copy
--    made with CREATE DATABASE ... TEMPLATE or restored without --create
--    would have them back. ontab creates no temporary table anywhere, and
--    no ontab role was granted it in its own right. Only the database's
--    owner (or a superuser) may revoke it: for another migrator the
--    REVOKE only warns, and `serve` names the privilege among the login's
--    excess at start (refusing to start in production mode).
-- 2. Every function with a fixed search_path lists pg_temp last, as
--    PostgreSQL's documentation asks of SECURITY DEFINER functions: even
--    on a database where a login keeps TEMPORARY, the use cases and the
--    triggers they fire read the real tables. Only the value of a setting
--    each function already had changes, so calls cost what they did.

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
           AND 'search_path=pg_catalog, public' = ANY (p.proconfig)
         ORDER BY p.oid
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, pg_temp', f);
    END LOOP;
END
$$;
