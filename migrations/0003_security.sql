-- Tenant isolation and privileges.
--
-- * Every tenant table has row level security enabled AND forced, with one
--   policy: rows belong to the tenant of the current transaction, set by
--   `set_config('ontab.business_id', <uuid>, true)`. Being transaction-local,
--   it cannot leak to the next user of a pooled connection (PgBouncer
--   transaction mode included). With no tenant set, no row is visible and
--   no row can be written. Forced, so the owner is bound too; and it binds
--   the SECURITY DEFINER functions, whose owners are not exempt either.
-- * ontab_app, the role the server runs as, reads its tenant's rows, creates
--   businesses, API keys, customers, products and idempotency records, and
--   updates only their mutable columns (names, price, credit limit, key
--   revocation). It cannot write history, limit history or stock: money and
--   stock move only through the use-case functions of 0004, which it may
--   call, and which run as ontab_writer. So no stock change can be committed
--   without its reason row, and no order or ledger entry except as a use
--   case writes it.
-- * Work that must look across tenants runs only inside SECURITY DEFINER
--   functions owned by ontab_system, whose policies show it exactly the rows
--   that work needs: live API keys (authentication, before the tenant is
--   known), expired idempotency records, and the list of business ids (for
--   `ontab audit`, callable by the migrating role only).
--
-- The server should log in as a role that is ontab_app and nothing more, so
-- that no SQL it runs can leave ontab_app (RESET ROLE returns to the login
-- role, which has nothing else). An operator creates one once per cluster:
--   CREATE ROLE ontab_server LOGIN PASSWORD '...' IN ROLE ontab_app;
-- and gives `ontab serve` its connection string; `ontab migrate` runs with
-- the owner's (a superuser, or the database owner with CREATEROLE). Such a
-- server cannot migrate; it may read ontab_migrations (created by the
-- migrator before any migration) to check that the schema is its own.

-- NULL when unset or empty, so `business_id = ontab_tenant()` is never true.
CREATE FUNCTION ontab_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('ontab.business_id', true), '')::uuid
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['api_keys', 'customers', 'products', 'stock_adjustments',
                             'orders', 'order_items', 'returns', 'return_items',
                             'credit_ledger', 'customer_changes', 'idempotency_keys',
                             'holds', 'hold_items', 'hold_endings', 'pending_holds', 'pending_hold_items']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                        USING (business_id = ontab_tenant())
                        WITH CHECK (business_id = ontab_tenant())', t);
    END LOOP;
END
$$;

ALTER TABLE businesses ENABLE ROW LEVEL SECURITY;
ALTER TABLE businesses FORCE ROW LEVEL SECURITY;
-- A business is created inside a transaction whose tenant is its new id, so
-- even creation goes through the policy.
CREATE POLICY tenant_isolation ON businesses
    USING (id = ontab_tenant())
    WITH CHECK (id = ontab_tenant());

GRANT USAGE ON SCHEMA public TO ontab_app;
GRANT SELECT ON businesses, api_keys, customers, products, stock_adjustments,
    orders, order_items, returns, return_items, credit_ledger, customer_changes,
    idempotency_keys, holds, hold_items, hold_endings, pending_holds, pending_hold_items TO ontab_app;
GRANT INSERT ON businesses, api_keys, customers, products, idempotency_keys TO ontab_app;
GRANT UPDATE (name, credit_limit, status, payment_terms_days) ON customers TO ontab_app;
GRANT UPDATE (name, payment_terms_days) ON businesses TO ontab_app;
GRANT UPDATE (name, price) ON products TO ontab_app;
GRANT UPDATE (revoked_at) ON api_keys TO ontab_app;

GRANT SELECT ON ontab_migrations TO ontab_app;

-- What the use-case functions (0004) and the guards they fire read and
-- write, and nothing else. Locking a row (FOR UPDATE, FOR SHARE) needs
-- UPDATE on one of its columns: customers' business_id is one whose every
-- change row level security refuses (WITH CHECK), so it grants the lock
-- and no write; products' stock is written anyway.
GRANT USAGE ON SCHEMA public TO ontab_writer;
GRANT SELECT ON customers, products, orders, order_items, returns, return_items,
    credit_ledger, holds, hold_items, hold_endings, pending_holds, pending_hold_items TO ontab_writer;
GRANT INSERT ON orders, order_items, returns, return_items, credit_ledger,
    stock_adjustments, holds, hold_items, hold_endings TO ontab_writer;
GRANT INSERT, DELETE ON pending_holds, pending_hold_items TO ontab_writer;
GRANT UPDATE (stock) ON products TO ontab_writer;
GRANT UPDATE (business_id) ON customers TO ontab_writer;

-- The keepers of reserved and held (0002) write those two columns, and read
-- what the limit check on held needs.
GRANT USAGE ON SCHEMA public TO ontab_reserver;
GRANT SELECT (business_id, id, reserved), UPDATE (reserved) ON products TO ontab_reserver;
GRANT SELECT (business_id, id, held), UPDATE (held) ON customers TO ontab_reserver;
GRANT SELECT (business_id, customer_id, seq, balance_after) ON credit_ledger TO ontab_reserver;
GRANT SELECT (business_id, customer_id, total, expires_at) ON pending_holds TO ontab_reserver;

-- The customers' history recorder (0002) reads a customer's ledger head and
-- appends the change.
GRANT USAGE ON SCHEMA public TO ontab_recorder;
GRANT SELECT (business_id, customer_id, seq) ON credit_ledger TO ontab_recorder;
GRANT INSERT ON customer_changes TO ontab_recorder;
GRANT USAGE ON SEQUENCE customer_changes_id_seq TO ontab_recorder;

-- Every policy calls it, as whoever is subject to the policy.
GRANT EXECUTE ON FUNCTION ontab_tenant() TO ontab_app, ontab_writer, ontab_recorder, ontab_reserver, ontab_system;
GRANT EXECUTE ON FUNCTION ontab_expired_hold_credit(uuid, uuid), ontab_expired_reserve(uuid, uuid)
    TO ontab_app, ontab_writer, ontab_reserver;

-- Handing a function to another role (ALTER FUNCTION ... OWNER TO) requires
-- that role to have CREATE on the function's schema, which a migrating role
-- that is not a superuser (the database owner, with CREATEROLE) cannot
-- skip. The new owners have it for the hand-overs below only (and in 0004).
GRANT CREATE ON SCHEMA public TO ontab_system, ontab_recorder, ontab_reserver;

ALTER FUNCTION ontab_record_customer_change() OWNER TO ontab_recorder;
ALTER FUNCTION ontab_keep_held() OWNER TO ontab_reserver;
ALTER FUNCTION ontab_keep_reserved() OWNER TO ontab_reserver;
REVOKE ALL ON FUNCTION ontab_keep_held(), ontab_keep_reserved() FROM PUBLIC;
REVOKE ALL ON FUNCTION ontab_record_customer_change() FROM PUBLIC;

-- Authentication runs before a tenant is known, so it cannot go through the
-- tenant policy. ontab_system may read live keys, and only through this
-- function, which returns what is needed to check a presented key.
GRANT SELECT ON api_keys TO ontab_system;
CREATE POLICY key_lookup ON api_keys FOR SELECT TO ontab_system USING (revoked_at IS NULL);

CREATE FUNCTION ontab_api_key(p_key_id uuid)
RETURNS TABLE (business_id uuid, secret_sha256 bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT k.business_id, k.secret_sha256
      FROM public.api_keys k
     WHERE k.id = p_key_id AND k.revoked_at IS NULL
$$;
ALTER FUNCTION ontab_api_key(uuid) OWNER TO ontab_system;
REVOKE ALL ON FUNCTION ontab_api_key(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_api_key(uuid) TO ontab_app;

-- Expired idempotency records span tenants: ontab_system may delete them,
-- and only those older than 24 hours.
GRANT SELECT, DELETE ON idempotency_keys TO ontab_system;
CREATE POLICY expiry ON idempotency_keys FOR ALL TO ontab_system
    USING (created_at < now() - interval '24 hours');

CREATE FUNCTION ontab_expire_idempotency_keys(p_older_than interval)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH gone AS (
        DELETE FROM public.idempotency_keys
         WHERE created_at < now() - greatest(p_older_than, interval '24 hours')
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;
ALTER FUNCTION ontab_expire_idempotency_keys(interval) OWNER TO ontab_system;
REVOKE ALL ON FUNCTION ontab_expire_idempotency_keys(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_expire_idempotency_keys(interval) TO ontab_app;

-- Holds expire by the clock, with no request: the sweep (src/app/holds.rs)
-- finds expired reservations across tenants through this function, then
-- records each expiry in that hold's tenant's own transaction
-- (ontab_expire_hold, 0004). ontab_system sees only expired rows.
GRANT SELECT (business_id, hold_id, expires_at) ON pending_holds TO ontab_system;
CREATE POLICY expiry_sweep ON pending_holds FOR SELECT TO ontab_system USING (expires_at <= now());

CREATE FUNCTION ontab_expired_holds(p_limit int)
RETURNS TABLE (business_id uuid, hold_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT p.business_id, p.hold_id
      FROM public.pending_holds p
     WHERE p.expires_at <= now()
     ORDER BY p.expires_at
     LIMIT p_limit
$$;
ALTER FUNCTION ontab_expired_holds(int) OWNER TO ontab_system;
REVOKE ALL ON FUNCTION ontab_expired_holds(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_expired_holds(int) TO ontab_app;

-- `ontab audit` checks every tenant, so it must first learn which tenants
-- exist, while every table (businesses included) hides its rows from anyone
-- but the tenant of the transaction, the owner included. ontab_system may
-- list business ids, and only through this function, which the migrating
-- role (the operator's role) may call and ontab_app may not: a tenant must
-- never learn of the others. The audit then reads each tenant under that
-- tenant's own policy.
GRANT SELECT ON businesses TO ontab_system;
CREATE POLICY business_listing ON businesses FOR SELECT TO ontab_system USING (true);

CREATE FUNCTION ontab_business_ids()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT b.id FROM public.businesses b ORDER BY b.created_at, b.id
$$;
ALTER FUNCTION ontab_business_ids() OWNER TO ontab_system;
REVOKE ALL ON FUNCTION ontab_business_ids() FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION ontab_business_ids() TO %I', current_user);
END
$$;

REVOKE CREATE ON SCHEMA public FROM ontab_system, ontab_recorder, ontab_reserver;
