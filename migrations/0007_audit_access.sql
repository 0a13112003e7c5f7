-- `ontab audit` checks every tenant, so it must first learn which tenants
-- exist, while every table (businesses included) hides its rows from anyone
-- but the tenant of the transaction, the owner included (RLS is forced).
-- ontab_system may list business ids, and only through this function, which
-- the migrating role (the operator's role) may call and ontab_app may not:
-- a tenant must never learn of the others. The audit then reads each tenant
-- under that tenant's own policy.

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
