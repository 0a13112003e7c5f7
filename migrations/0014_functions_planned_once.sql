-- The remaining LANGUAGE sql functions that read or write tables, as
-- PL/pgSQL.
--
-- Two reasons, one per kind of PostgreSQL:
-- * Plain PostgreSQL plans a SQL function's statements again at every
--   call (they are never inlined: they have a FROM, or are SECURITY
--   DEFINER), where PL/pgSQL keeps its plans for the session. 0013 did the
--   same for the two expired-hold sums and measured it: 40 µs of planning
--   per call for a 3 µs lookup.
-- * Citus (docs/scale-out.md) cannot plan a SQL function's statement that
--   reaches a distributed table through the function's parameters ("could
--   not create distributed plan ... parameters in SQL functions"), nor a
--   data-modifying WITH inside one. PL/pgSQL hands it the parameters'
--   values.
--
-- Every table a function reads is filtered by the business given, even
-- where a join implies it: Citus routes a statement to the one node that
-- holds the business only when each table's business_id is pinned to the
-- value (from a trigger on a shard, it may not reach any other node).
--
-- Same arguments, results, volatility, security and search_path, so
-- callers, grants and owners stay as they are. Functions returning a table
-- resolve a name clash between an output column and a table column in
-- favour of the column (#variable_conflict use_column), as the SQL
-- versions did. The SQL functions left (ontab_pay, ontab_write_off,
-- ontab_account_refusal, ontab_json_time, ontab_tenant, ontab_uuid_v7 and
-- the parameterless listings) touch no table through a parameter.

CREATE OR REPLACE FUNCTION ontab_api_key(p_key_id uuid)
RETURNS TABLE (business_id uuid, secret_sha256 bytea)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT k.business_id, k.secret_sha256
      FROM public.api_keys k
     WHERE k.id = p_key_id AND k.revoked_at IS NULL;
END
$$;

CREATE OR REPLACE FUNCTION ontab_claim_webhook_deliveries(p_lease uuid, p_lease_ms integer, p_limit integer)
RETURNS TABLE (business_id uuid, delivery_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH heads AS (
        SELECT DISTINCT ON (d.business_id, d.endpoint_id, d.subject_id)
               d.business_id, d.id, d.endpoint_id, d.next_attempt_at, d.leased_until
          FROM public.webhook_deliveries d
         WHERE d.state = 'pending'
         ORDER BY d.business_id, d.endpoint_id, d.subject_id, d.sequence, d.id
    ), due AS (
        SELECT h.business_id, h.id
          FROM heads h
          JOIN public.webhook_endpoints e ON e.business_id = h.business_id AND e.id = h.endpoint_id
         WHERE NOT e.disabled
           AND h.next_attempt_at <= now()
           AND (h.leased_until IS NULL OR h.leased_until <= now())
         ORDER BY h.next_attempt_at
         LIMIT p_limit
    )
    UPDATE public.webhook_deliveries d
       SET lease = p_lease, leased_until = now() + make_interval(secs => p_lease_ms / 1000.0)
      FROM due
     WHERE d.business_id = due.business_id AND d.id = due.id
       AND d.state = 'pending'
       AND (d.leased_until IS NULL OR d.leased_until <= now())
    RETURNING d.business_id, d.id;
END
$$;

-- Read in steps rather than in one statement with a LATERAL subquery
-- without FROM, which Citus cannot plan ("correlated subqueries are not
-- supported when the FROM clause contains a subquery without FROM"). A
-- STABLE function's statements share one snapshot, so the steps see one
-- state.
CREATE OR REPLACE FUNCTION ontab_customer_json(p_business uuid, p_customer uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c record;
    balance bigint;
    held bigint;
BEGIN
    SELECT cu.id, cu.name, cu.credit_limit, cu.held, cu.status, cu.payment_terms_days, cu.created_at
      INTO c
      FROM customers cu
     WHERE cu.business_id = p_business AND cu.id = p_customer;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    held := c.held - ontab_expired_hold_credit(p_business, p_customer);
    balance := coalesce((SELECT l.balance_after FROM credit_ledger l
                          WHERE l.business_id = p_business AND l.customer_id = p_customer
                          ORDER BY l.seq DESC LIMIT 1), 0);
    RETURN jsonb_build_object(
        'id', c.id, 'name', c.name, 'credit_limit', c.credit_limit, 'balance', balance,
        'held', held, 'available_credit', greatest(c.credit_limit::numeric - balance - held, 0)::bigint,
        'status', c.status, 'payment_terms_days', c.payment_terms_days,
        'created_at', ontab_json_time(c.created_at));
END
$$;

CREATE OR REPLACE FUNCTION ontab_end_hold(p_business uuid, p_hold uuid, p_outcome text, p_order uuid)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hold_endings (business_id, hold_id, outcome, order_id) VALUES (p_business, p_hold, p_outcome, p_order);
    DELETE FROM pending_hold_items WHERE business_id = p_business AND hold_id = p_hold;
    DELETE FROM pending_holds WHERE business_id = p_business AND hold_id = p_hold;
END
$$;

CREATE OR REPLACE FUNCTION ontab_entry_json(p_business uuid, p_entry uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'id', l.id, 'customer_id', l.customer_id, 'kind', l.kind, 'amount', l.amount,
        'balance_after', l.balance_after, 'order_id', l.order_id, 'return_id', l.return_id,
        'due_at', ontab_json_time(l.due_at), 'reason', l.reason, 'seq', l.seq,
        'created_at', ontab_json_time(l.created_at))
      FROM credit_ledger l
     WHERE l.business_id = p_business AND l.id = p_entry);
END
$$;

CREATE OR REPLACE FUNCTION ontab_event_prune_limit(p_business uuid)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN least(
        (SELECT min(e.fanned_out_through) + 1
           FROM webhook_endpoints e
          WHERE e.business_id = p_business),
        (SELECT min(d.sequence)
           FROM webhook_deliveries d
           JOIN webhook_endpoints e ON e.business_id = d.business_id AND e.id = d.endpoint_id
          WHERE d.business_id = p_business AND d.state = 'pending' AND NOT e.disabled));
END
$$;

CREATE OR REPLACE FUNCTION ontab_expire_idempotency_keys(p_older_than interval)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    gone bigint;
BEGIN
    DELETE FROM public.idempotency_keys
     WHERE created_at < now() - greatest(p_older_than, interval '24 hours');
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END
$$;

CREATE OR REPLACE FUNCTION ontab_expired_holds(p_limit integer)
RETURNS TABLE (business_id uuid, hold_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT p.business_id, p.hold_id
      FROM public.pending_holds p
     WHERE p.expires_at <= now()
     ORDER BY p.expires_at
     LIMIT p_limit;
END
$$;

CREATE OR REPLACE FUNCTION ontab_hold_view(p_business uuid, p_hold uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'id', h.id, 'customer_id', h.customer_id,
        'status', coalesce(e.outcome, CASE WHEN h.expires_at <= now() THEN 'expired' ELSE 'pending' END),
        'items', (SELECT jsonb_agg(jsonb_build_object('product_id', i.product_id, 'quantity', i.quantity,
                                                      'unit_price', i.unit_price, 'line_total', i.line_total)
                                   ORDER BY i.line_no)
                    FROM hold_items i WHERE i.business_id = p_business AND i.hold_id = h.id),
        'total', h.total, 'created_at', h.created_at, 'expires_at', h.expires_at,
        'ended_at', CASE WHEN e.outcome IN ('captured', 'voided') THEN e.ended_at
                         WHEN h.expires_at <= now() THEN h.expires_at END,
        'order_id', e.order_id)
      FROM holds h
      LEFT JOIN hold_endings e ON e.business_id = p_business AND e.hold_id = h.id
     WHERE h.business_id = p_business AND h.id = p_hold);
END
$$;

CREATE OR REPLACE FUNCTION ontab_hold_json(p_business uuid, p_hold uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v jsonb := ontab_hold_view(p_business, p_hold);
BEGIN
    RETURN v || jsonb_build_object(
                    'created_at', ontab_json_time((v ->> 'created_at')::timestamptz),
                    'expires_at', ontab_json_time((v ->> 'expires_at')::timestamptz),
                    'ended_at', ontab_json_time((v ->> 'ended_at')::timestamptz));
END
$$;

CREATE OR REPLACE FUNCTION ontab_nats_due(p_limit integer)
RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN QUERY
    SELECT b.id
      FROM public.businesses b
     WHERE EXISTS (SELECT 1 FROM public.events ev
                    WHERE ev.business_id = b.id
                      AND ev.sequence = coalesce((SELECT c.published_through
                                                    FROM public.nats_cursors c
                                                   WHERE c.business_id = b.id), 0) + 1)
     LIMIT p_limit;
END
$$;

CREATE OR REPLACE FUNCTION ontab_order_json(p_business uuid, p_order uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'id', o.id, 'customer_id', o.customer_id, 'total', o.total,
        'created_at', ontab_json_time(o.created_at), 'due_at', ontab_json_time(o.due_at),
        'hold_id', o.hold_id,
        'items', (SELECT jsonb_agg(jsonb_build_object('product_id', i.product_id, 'quantity', i.quantity,
                                                      'unit_price', i.unit_price, 'line_total', i.line_total)
                                   ORDER BY i.line_no)
                    FROM order_items i WHERE i.business_id = p_business AND i.order_id = o.id),
        'returns', '[]'::jsonb)
      FROM orders o
     WHERE o.business_id = p_business AND o.id = p_order);
END
$$;

-- In steps, as ontab_customer_json.
CREATE OR REPLACE FUNCTION ontab_product_json(p_business uuid, p_product uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p record;
    reserved bigint;
BEGIN
    SELECT pr.id, pr.name, pr.price, pr.stock, pr.reserved, pr.created_at
      INTO p
      FROM products pr
     WHERE pr.business_id = p_business AND pr.id = p_product;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    reserved := p.reserved - ontab_expired_reserve(p_business, p_product);
    RETURN jsonb_build_object(
        'id', p.id, 'name', p.name, 'price', p.price, 'stock', p.stock, 'reserved', reserved,
        'available', greatest(p.stock - reserved, 0), 'created_at', ontab_json_time(p.created_at));
END
$$;

CREATE OR REPLACE FUNCTION ontab_release_expired(p_business uuid, p_product_ids uuid[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM pending_hold_items
     WHERE business_id = p_business AND product_id = ANY (p_product_ids) AND expires_at <= now();
END
$$;

CREATE OR REPLACE FUNCTION ontab_release_expired_credit(p_business uuid, p_customer_ids uuid[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM pending_holds
     WHERE business_id = p_business AND customer_id = ANY (p_customer_ids) AND expires_at <= now();
END
$$;

CREATE OR REPLACE FUNCTION ontab_return_json(p_business uuid, p_return uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'id', r.id, 'order_id', r.order_id, 'amount', r.amount,
        'items', (SELECT jsonb_agg(jsonb_build_object('product_id', i.product_id, 'quantity', i.quantity,
                                                      'unit_price', i.unit_price, 'line_total', i.line_total)
                                   ORDER BY i.line_no)
                    FROM return_items i WHERE i.business_id = p_business AND i.return_id = r.id),
        'created_at', ontab_json_time(r.created_at))
      FROM returns r
     WHERE r.business_id = p_business AND r.id = p_return);
END
$$;

CREATE OR REPLACE FUNCTION ontab_unsequenced_businesses(p_limit integer)
RETURNS TABLE (business_id uuid, oldest timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT e.business_id, min(e.created_at)
      FROM public.events e
     WHERE e.sequence IS NULL
     GROUP BY e.business_id
     ORDER BY min(e.created_at)
     LIMIT p_limit;
END
$$;

CREATE OR REPLACE FUNCTION ontab_webhook_fan_out_due(p_limit integer)
RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    RETURN QUERY
    SELECT DISTINCT e.business_id
      FROM public.webhook_endpoints e
     CROSS JOIN LATERAL (SELECT ev.sequence
                           FROM public.events ev
                          WHERE ev.business_id = e.business_id
                            AND ev.sequence > e.fanned_out_through
                          ORDER BY ev.sequence
                          LIMIT 1) AS next_event
     WHERE next_event.sequence = e.fanned_out_through + 1
     LIMIT p_limit;
END
$$;

-- `CASE TG_OP WHEN ...` compares a PL/pgSQL variable in the simple CASE
-- form, which Citus deparses wrongly when it sends the INSERT to the
-- worker holding the business ("operator does not exist: text =
-- boolean"). The searched form means the same.
CREATE OR REPLACE FUNCTION ontab_customer_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(),
            CASE WHEN TG_OP = 'INSERT' THEN 'customer.created' ELSE 'customer.updated' END,
            NEW.id, ontab_customer_json(NEW.business_id, NEW.id));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ontab_product_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(),
            CASE WHEN TG_OP = 'INSERT' THEN 'product.created' ELSE 'product.updated' END,
            NEW.id, ontab_product_json(NEW.business_id, NEW.id));
    RETURN NULL;
END
$$;

-- Citus evaluates an INSERT's column defaults before it sends the row to
-- the shard, so the shard sees created_at and position as inserted
-- columns: the outbox must be allowed to insert them. It sets them only to
-- their defaults (its triggers name the other five).
GRANT INSERT (created_at, position) ON events TO ontab_outbox;

-- One event per ledger entry, inserted row by row from the transition
-- table. Citus runs an INSERT ... SELECT into a distributed table in
-- steps of its own, where a trigger's transition table cannot be read
-- ("executor could not find named tuplestore"), and as COPY, which row
-- level security refuses. Reading the transition table is a local query;
-- each INSERT goes to the business's node. Order and content as before.
CREATE OR REPLACE FUNCTION ontab_ledger_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n record;
BEGIN
    FOR n IN SELECT e.business_id, e.id, e.kind, e.customer_id, e.order_id, e.return_id
               FROM new_entries e
              ORDER BY e.customer_id, e.seq
    LOOP
        INSERT INTO events (business_id, id, type, subject_id, data)
        VALUES (n.business_id, ontab_uuid_v7(),
                CASE WHEN n.kind = 'purchase' THEN 'purchase.created'
                     WHEN n.kind = 'payment' THEN 'payment.recorded'
                     WHEN n.kind = 'return' THEN 'return.recorded'
                     ELSE 'write_off.recorded' END,
                n.customer_id,
                CASE WHEN n.kind = 'purchase' THEN ontab_order_json(n.business_id, n.order_id)
                     WHEN n.kind = 'return' THEN ontab_return_json(n.business_id, n.return_id)
                     ELSE ontab_entry_json(n.business_id, n.id) END);
    END LOOP;
    RETURN NULL;
END
$$;

-- Read first, then insert: an INSERT ... SELECT between two tables of the
-- business runs on Citus as a task on the shard, where the hold's JSON,
-- read by a function, could not be (nested distributed execution).
CREATE OR REPLACE FUNCTION ontab_hold_ended_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    customer uuid;
BEGIN
    SELECT h.customer_id INTO customer
      FROM holds h
     WHERE h.business_id = NEW.business_id AND h.id = NEW.hold_id;
    IF FOUND THEN
        INSERT INTO events (business_id, id, type, subject_id, data)
        VALUES (NEW.business_id, ontab_uuid_v7(), 'hold.' || NEW.outcome, customer,
                ontab_hold_json(NEW.business_id, NEW.hold_id));
    END IF;
    RETURN NULL;
END
$$;
