-- Every use case as a function of the business it acts for, its last
-- argument: ontab_<use case>_for(..., p_business). The server calls these.
--
-- On one PostgreSQL each is a thin wrapper: it checks that the business
-- is the transaction's tenant and calls the use case of 0004, which does
-- the work as before (under the tenant's row level security, as its
-- SECURITY DEFINER owner).
--
-- On Citus (docs/scale-out.md) `ontab migrate` distributes each by
-- p_business, colocated with the tenant tables and delegated even inside
-- a transaction (force_delegation): the call runs on the node that holds
-- the business, so every statement of the use case and of the triggers it
-- fires is local there, in the transaction's own connection. Run on the
-- coordinator instead, a use case would reach the node once per statement,
-- and, being SECURITY DEFINER, over a connection of its owner's, which
-- Citus refuses after the server's own role wrote there in the same
-- transaction (the idempotency record: "cannot perform query on
-- placements that were modified in this transaction by a different
-- user").
--
-- The business is checked here, not left to row level security alone: a
-- delegated call is routed by this argument, so a call naming another
-- business than the tenant's is refused before it runs anywhere.

CREATE FUNCTION ontab_require_business(p_business uuid) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_business IS DISTINCT FROM ontab_require_tenant() THEN
        RAISE EXCEPTION 'the business % is not this transaction''s tenant', p_business
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION ontab_require_business(uuid) TO ontab_app;

CREATE FUNCTION ontab_purchase_for(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_purchase(p_order_id, p_entry_id, p_customer_id, p_product_ids, p_quantities);
END
$$;
REVOKE ALL ON FUNCTION ontab_purchase_for(uuid, uuid, uuid, uuid[], bigint[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_purchase_for(uuid, uuid, uuid, uuid[], bigint[], uuid) TO ontab_app;

CREATE FUNCTION ontab_purchase_batch_for(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[], p_business uuid)
RETURNS jsonb[]
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_purchase_batch(p_order_ids, p_entry_ids, p_customer_ids, p_line_orders, p_product_ids, p_quantities);
END
$$;
REVOKE ALL ON FUNCTION ontab_purchase_batch_for(uuid[], uuid[], uuid[], integer[], uuid[], bigint[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_purchase_batch_for(uuid[], uuid[], uuid[], integer[], uuid[], bigint[], uuid) TO ontab_app;

CREATE FUNCTION ontab_return_for(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_return(p_return_id, p_entry_id, p_order_id, p_product_ids, p_quantities);
END
$$;
REVOKE ALL ON FUNCTION ontab_return_for(uuid, uuid, uuid, uuid[], bigint[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_return_for(uuid, uuid, uuid, uuid[], bigint[], uuid) TO ontab_app;

CREATE FUNCTION ontab_pay_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_pay(p_entry_id, p_customer_id, p_amount);
END
$$;
REVOKE ALL ON FUNCTION ontab_pay_for(uuid, uuid, bigint, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_pay_for(uuid, uuid, bigint, uuid) TO ontab_app;

CREATE FUNCTION ontab_write_off_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text, p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_write_off(p_entry_id, p_customer_id, p_amount, p_reason);
END
$$;
REVOKE ALL ON FUNCTION ontab_write_off_for(uuid, uuid, bigint, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_write_off_for(uuid, uuid, bigint, text, uuid) TO ontab_app;

CREATE FUNCTION ontab_hold_for(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer, p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_hold(p_hold_id, p_customer_id, p_product_ids, p_quantities, p_expires_in);
END
$$;
REVOKE ALL ON FUNCTION ontab_hold_for(uuid, uuid, uuid[], bigint[], integer, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_hold_for(uuid, uuid, uuid[], bigint[], integer, uuid) TO ontab_app;

CREATE FUNCTION ontab_capture_for(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_capture(p_hold_id, p_order_id, p_entry_id, p_product_ids, p_quantities);
END
$$;
REVOKE ALL ON FUNCTION ontab_capture_for(uuid, uuid, uuid, uuid[], bigint[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_capture_for(uuid, uuid, uuid, uuid[], bigint[], uuid) TO ontab_app;

CREATE FUNCTION ontab_void_for(p_hold_id uuid, p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_void(p_hold_id);
END
$$;
REVOKE ALL ON FUNCTION ontab_void_for(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_void_for(uuid, uuid) TO ontab_app;

CREATE FUNCTION ontab_expire_hold_for(p_hold_id uuid, p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_expire_hold(p_hold_id);
END
$$;
REVOKE ALL ON FUNCTION ontab_expire_hold_for(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_expire_hold_for(uuid, uuid) TO ontab_app;

CREATE FUNCTION ontab_adjust_stock_for(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text, p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_adjust_stock(p_adjustment_id, p_product_id, p_delta, p_reason);
END
$$;
REVOKE ALL ON FUNCTION ontab_adjust_stock_for(uuid, uuid, bigint, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_adjust_stock_for(uuid, uuid, bigint, text, uuid) TO ontab_app;

CREATE FUNCTION ontab_update_customer_for(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer, p_business uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_update_customer(p_customer_id, p_name, p_credit_limit, p_status, p_payment_terms_days);
END
$$;
REVOKE ALL ON FUNCTION ontab_update_customer_for(uuid, text, bigint, text, integer, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_update_customer_for(uuid, text, bigint, text, integer, uuid) TO ontab_app;

-- The events' per-business background work, likewise.
CREATE FUNCTION ontab_sequence_events_for(p_limit int, p_business uuid)
RETURNS TABLE (event_type text, sequenced bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN QUERY SELECT s.event_type, s.sequenced FROM ontab_sequence_events(p_limit) s;
END
$$;
REVOKE ALL ON FUNCTION ontab_sequence_events_for(int, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_sequence_events_for(int, uuid) TO ontab_app;

CREATE FUNCTION ontab_record_overdue_for(p_limit int, p_business uuid)
RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_record_overdue(p_limit);
END
$$;
REVOKE ALL ON FUNCTION ontab_record_overdue_for(int, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_record_overdue_for(int, uuid) TO ontab_app;

CREATE FUNCTION ontab_prune_events_for(p_before timestamptz, p_limit int, p_business uuid)
RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_prune_events(p_before, p_limit);
END
$$;
REVOKE ALL ON FUNCTION ontab_prune_events_for(timestamptz, int, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_prune_events_for(timestamptz, int, uuid) TO ontab_app;
