-- The triggers that ontab_app's own writes fire read their tables through
-- a fixed search_path too.
--
-- 0028 ended every fixed search_path with pg_temp, so a temporary table
-- cannot stand in for one of ontab's inside the use cases, and the
-- migrator revokes TEMPORARY from PUBLIC. Where TEMPORARY stays (a
-- migrator that does not own the database can only warn, and serve then
-- refuses to start in production mode), one path was still open: the
-- server's role writes customers and products directly (create, rename,
-- limit, status, terms, price), and the triggers those writes fire ran
-- with the session's search_path, pg_temp first. A temporary, empty
-- `credit_ledger` would let a customer with a balance be closed
-- (ontab_check_customer_status reads the newest entry), and a temporary
-- `businesses` would give a new customer other default terms.
--
-- Each trigger function on a table ontab_app may write now has the same
-- fixed search_path as the use cases. None is on the purchase path: they
-- fire on a customer's or product's own changes (and, for the held check,
-- on a hold, already inside a use case with this search_path), so the
-- setting's cost per call does not reach a purchase.
-- tests/api/privileges.rs holds every such trigger to this rule.

ALTER FUNCTION ontab_check_customer_status() SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION ontab_check_held() SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION ontab_default_customer_terms() SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION ontab_keep_initial_stock() SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION ontab_refuse_unexplained_stock() SET search_path = pg_catalog, public, pg_temp;
