-- The two sums of expired holds as PL/pgSQL, so their plan is kept.
--
-- ontab_expired_hold_credit runs for every ledger entry (the credit check
-- of 0002 subtracts it from the customer's held) and for every customer a
-- read returns; ontab_expired_reserve for every product a read returns.
-- As LANGUAGE sql functions with a FROM they are never inlined, and
-- PostgreSQL plans a SQL function's statement again at every call:
-- measured with pg_stat_statements counting planning (bench/run.sh
-- uncontended, 64 clients, bench/results/20261203T074801Z) 43 µs per
-- purchase, 40 of them planning, for a 3 µs lookup: about 7% of
-- PostgreSQL's time per purchase, and the credit check's statement cost
-- 79 µs per purchase. A PL/pgSQL function keeps its statement's plan for
-- the session: 17 µs (20261203T075730Z).
--
-- Same arguments, result and volatility (STABLE: one now() per statement),
-- so callers, grants and owners stay as they are.
CREATE OR REPLACE FUNCTION ontab_expired_hold_credit(p_business uuid, p_customer uuid) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(p.total), 0)::bigint
              FROM pending_holds p
             WHERE p.business_id = p_business AND p.customer_id = p_customer
               AND p.expires_at <= now());
END
$$;

CREATE OR REPLACE FUNCTION ontab_expired_reserve(p_business uuid, p_product uuid) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(i.quantity), 0)::bigint
              FROM pending_hold_items i
             WHERE i.business_id = p_business AND i.product_id = p_product
               AND i.expires_at <= now());
END
$$;
