-- The schema of a freshly migrated ontab database (pg_dump 15 --schema-only),
-- migrated by the superuser postgres. Written by .ci/schema-check.sh --update;
-- CI fails when the migrations no longer produce exactly this.
--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: ontab_account_refusal(uuid, text, boolean); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_account_refusal(p_customer_id uuid, p_status text, p_buying boolean) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE
        WHEN p_status = 'closed' THEN
            jsonb_build_object('error', 'customer_closed', 'customer_id', p_customer_id)
        WHEN p_status = 'on_hold' AND p_buying THEN
            jsonb_build_object('error', 'customer_on_hold', 'customer_id', p_customer_id)
    END
$$;

ALTER FUNCTION public.ontab_account_refusal(p_customer_id uuid, p_status text, p_buying boolean) OWNER TO postgres;

--
-- Name: ontab_adjust_stock(uuid, uuid, bigint, text); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_adjust_stock(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    product_now record;
    product_after products;
    created timestamptz := now();
BEGIN
    PERFORM 1 FROM products WHERE business_id = tenant AND id = p_product_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'product', 'id', p_product_id);
    END IF;
    -- What pending holds reserve cannot be adjusted away.
    PERFORM ontab_release_expired(tenant, ARRAY[p_product_id]);
    SELECT stock, reserved INTO product_now FROM products WHERE business_id = tenant AND id = p_product_id;
    IF product_now.stock::numeric + p_delta < product_now.reserved THEN
        RETURN jsonb_build_object('error', 'insufficient_stock', 'product_id', p_product_id,
                                  'requested', -p_delta, 'available', product_now.stock - product_now.reserved);
    END IF;
    IF product_now.stock::numeric + p_delta > 9007199254740991 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'delta',
                                  'message', 'the stock would exceed 9007199254740991 (2^53 - 1)');
    END IF;

    UPDATE products SET stock = stock + p_delta
     WHERE business_id = tenant AND id = p_product_id
    RETURNING * INTO product_after;

    INSERT INTO stock_adjustments (business_id, id, product_id, delta, reason, stock_after, created_at)
    VALUES (tenant, p_adjustment_id, p_product_id, p_delta, p_reason, product_after.stock, created);

    RETURN jsonb_build_object(
        'product', jsonb_build_object('id', product_after.id, 'name', product_after.name,
                                      'price', product_after.price, 'stock', product_after.stock,
                                      'reserved', product_after.reserved,
                                      'created_at', product_after.created_at),
        'adjustment', jsonb_build_object('id', p_adjustment_id, 'product_id', p_product_id,
                                         'delta', p_delta, 'reason', p_reason,
                                         'stock_after', product_after.stock, 'created_at', created));
END
$$;

ALTER FUNCTION public.ontab_adjust_stock(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text) OWNER TO ontab_writer;

--
-- Name: ontab_adjust_stock_for(uuid, uuid, bigint, text, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_adjust_stock_for(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text, p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_adjust_stock(p_adjustment_id, p_product_id, p_delta, p_reason);
END
$$;

ALTER FUNCTION public.ontab_adjust_stock_for(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_adjustment_events(); Type: FUNCTION; Schema: public; Owner: ontab_outbox
--

CREATE FUNCTION public.ontab_adjustment_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(), 'stock.adjusted', NEW.product_id,
            jsonb_build_object(
                'product', ontab_product_json(NEW.business_id, NEW.product_id),
                'adjustment', jsonb_build_object(
                    'id', NEW.id, 'product_id', NEW.product_id, 'delta', NEW.delta, 'reason', NEW.reason,
                    'stock_after', NEW.stock_after, 'created_at', ontab_json_time(NEW.created_at))));
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_adjustment_events() OWNER TO ontab_outbox;

--
-- Name: ontab_api_key(uuid); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_api_key(p_key_id uuid) RETURNS TABLE(business_id uuid, secret_sha256 bytea)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT k.business_id, k.secret_sha256
      FROM public.api_keys k
     WHERE k.id = p_key_id AND k.revoked_at IS NULL;
END
$$;

ALTER FUNCTION public.ontab_api_key(p_key_id uuid) OWNER TO ontab_system;

--
-- Name: ontab_business_ids(); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_business_ids() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT b.id FROM public.businesses b ORDER BY b.created_at, b.id
$$;

ALTER FUNCTION public.ontab_business_ids() OWNER TO ontab_system;

--
-- Name: ontab_capture(uuid, uuid, uuid, uuid[], bigint[]); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_capture(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[]) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    hold record;
    refusal jsonb;
    line_ids uuid[] := p_product_ids;
    line_quantities bigint[] := p_quantities;
    line record;
    head record;
    order_total numeric := 0::numeric;
    created timestamptz;
    due timestamptz;
    items jsonb;
BEGIN
    hold := ontab_lock_hold(tenant, p_hold_id);
    IF hold.customer_id IS NULL THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'hold', 'id', p_hold_id);
    END IF;
    IF hold.status <> 'active' THEN
        RETURN ontab_account_refusal(hold.customer_id, hold.status, true);
    END IF;
    refusal := ontab_hold_refusal(tenant, p_hold_id, hold.expires_at);
    IF refusal IS NOT NULL THEN
        RETURN refusal;
    END IF;

    IF line_ids IS NULL THEN
        SELECT array_agg(i.product_id ORDER BY i.line_no), array_agg(i.quantity ORDER BY i.line_no)
          INTO line_ids, line_quantities
          FROM hold_items i WHERE i.business_id = tenant AND i.hold_id = p_hold_id;
    END IF;
    FOR line IN
        SELECT l.product_id, l.quantity, i.quantity AS held, i.unit_price
          FROM unnest(line_ids, line_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          LEFT JOIN LATERAL (SELECT hi.quantity, hi.unit_price FROM hold_items hi
                              WHERE hi.business_id = tenant AND hi.hold_id = p_hold_id
                                AND hi.product_id = l.product_id LIMIT 1) i ON true
         ORDER BY l.ord
    LOOP
        IF line.held IS NULL OR line.quantity > line.held THEN
            RETURN jsonb_build_object('error', 'capture_exceeds_hold', 'product_id', line.product_id,
                                      'held', coalesce(line.held, 0));
        END IF;
        order_total := order_total + line.unit_price::numeric * line.quantity;
    END LOOP;

    SELECT c.seq, c.balance_after AS balance, c.purchases_to_date, c.created_at AS created INTO head
      FROM credit_ledger c
     WHERE c.business_id = tenant AND c.customer_id = hold.customer_id
     ORDER BY c.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        SELECT 0::bigint AS seq, 0::bigint AS balance, 0::bigint AS purchases_to_date,
               '-infinity'::timestamptz AS created INTO head;
    END IF;
    IF head.purchases_to_date::numeric + order_total > 9223372036854775807
       OR head.balance::numeric + order_total > 9007199254740991 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                  'message', 'the customer''s balance or lifetime purchases would exceed the largest representable amount');
    END IF;

    created := greatest(now(), head.created);
    due := created + make_interval(days => hold.payment_terms_days);
    INSERT INTO orders (business_id, id, customer_id, total, created_at, due_at, hold_id)
    VALUES (tenant, p_order_id, hold.customer_id, order_total, created, due, p_hold_id);
    WITH written AS (
        INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total)
        SELECT tenant, p_order_id, l.ord, l.product_id, l.quantity, i.unit_price, i.unit_price * l.quantity
          FROM unnest(line_ids, line_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          CROSS JOIN LATERAL (SELECT hi.unit_price FROM hold_items hi
                               WHERE hi.business_id = tenant AND hi.hold_id = p_hold_id
                                 AND hi.product_id = l.product_id LIMIT 1) i
        RETURNING line_no, product_id, quantity, unit_price, line_total
    )
    SELECT jsonb_agg(jsonb_build_object('product_id', product_id, 'quantity', quantity,
                                        'unit_price', unit_price, 'line_total', line_total)
                     ORDER BY line_no)
      INTO items
      FROM written;

    -- Released first, so that the stock it takes was its own reservation.
    PERFORM ontab_end_hold(tenant, p_hold_id, 'captured', p_order_id);
    FOR line IN SELECT * FROM unnest(line_ids, line_quantities) AS l (product_id, quantity) LOOP
        UPDATE products SET stock = stock - line.quantity
         WHERE business_id = tenant AND id = line.product_id;
    END LOOP;

    INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, order_id,
                               created_at, due_at, hold_id)
    VALUES (tenant, p_entry_id, hold.customer_id, head.seq + 1, 'purchase', order_total,
            head.balance + order_total, p_order_id, created, due, p_hold_id);

    RETURN jsonb_build_object('order', jsonb_build_object(
        'id', p_order_id, 'customer_id', hold.customer_id, 'total', order_total::bigint,
        'created_at', created, 'due_at', due, 'hold_id', p_hold_id, 'items', items));
END
$$;

ALTER FUNCTION public.ontab_capture(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[]) OWNER TO ontab_writer;

--
-- Name: ontab_capture_for(uuid, uuid, uuid, uuid[], bigint[], uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_capture_for(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_capture(p_hold_id, p_order_id, p_entry_id, p_product_ids, p_quantities);
END
$$;

ALTER FUNCTION public.ontab_capture_for(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) OWNER TO postgres;

--
-- Name: ontab_check_customer_status(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_customer_status() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    balance bigint;
BEGIN
    IF OLD.status = 'closed' AND NEW.status <> 'closed' THEN
        RAISE EXCEPTION 'customer % is closed, for good', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'customers_closed_is_final';
    END IF;
    IF NEW.status = 'closed' AND OLD.status <> 'closed' THEN
        IF NEW.held <> 0 THEN
            RAISE EXCEPTION 'customer % has % held by pending holds: it is closed only once they end', NEW.id, NEW.held
                USING ERRCODE = 'check_violation', CONSTRAINT = 'customers_closed_from_zero';
        END IF;
        SELECT l.balance_after INTO balance
          FROM credit_ledger l
         WHERE l.business_id = NEW.business_id AND l.customer_id = NEW.id
         ORDER BY l.seq DESC
         LIMIT 1;
        IF coalesce(balance, 0) <> 0 THEN
            RAISE EXCEPTION 'customer % has a balance of %: it is closed only from zero', NEW.id, balance
                USING ERRCODE = 'check_violation', CONSTRAINT = 'customers_closed_from_zero';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION public.ontab_check_customer_status() OWNER TO postgres;

--
-- Name: ontab_check_held(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_held() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    balance bigint;
BEGIN
    IF NEW.status <> 'active' THEN
        RAISE EXCEPTION 'customer % is %: it may not hold', NEW.id, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'customers_hold_when_active';
    END IF;
    SELECT l.balance_after INTO balance
      FROM credit_ledger l
     WHERE l.business_id = NEW.business_id AND l.customer_id = NEW.id
     ORDER BY l.seq DESC
     LIMIT 1;
    IF coalesce(balance, 0) + NEW.held - ontab_expired_hold_credit(NEW.business_id, NEW.id) > NEW.credit_limit THEN
        RAISE EXCEPTION 'credit limit exceeded: balance % and % held above limit %',
                        coalesce(balance, 0), NEW.held, NEW.credit_limit
            USING ERRCODE = 'check_violation', CONSTRAINT = 'customers_held_within_limit';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION public.ontab_check_held() OWNER TO postgres;

--
-- Name: ontab_check_hold_ending(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_hold_ending() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    expiry timestamptz;
    capturing uuid;
BEGIN
    -- The deciding transaction's clock, whatever the writer sent.
    NEW.ended_at := now();
    SELECT expires_at INTO expiry FROM holds WHERE business_id = NEW.business_id AND id = NEW.hold_id;
    IF (NEW.outcome = 'expired') <> (NEW.ended_at >= expiry) THEN
        RAISE EXCEPTION 'hold % expires at %: it cannot end % at %', NEW.hold_id, expiry, NEW.outcome, NEW.ended_at
            USING ERRCODE = 'check_violation', CONSTRAINT = 'hold_endings_in_time';
    END IF;
    IF NEW.outcome = 'captured' THEN
        SELECT hold_id INTO capturing FROM orders WHERE business_id = NEW.business_id AND id = NEW.order_id;
        IF capturing IS DISTINCT FROM NEW.hold_id THEN
            RAISE EXCEPTION 'order % did not capture hold %', NEW.order_id, NEW.hold_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'hold_endings_captured_by_its_order';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION public.ontab_check_hold_ending() OWNER TO postgres;

--
-- Name: ontab_check_ledger_chain(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_ledger_chain() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    previous_balance bigint;
    previous_purchases bigint;
    previous_created timestamptz;
    customer record;
    purchased bigint;
BEGIN
    IF NEW.seq = 1 THEN
        previous_balance := 0;
        previous_purchases := 0;
    ELSE
        SELECT balance_after, purchases_to_date, created_at
          INTO previous_balance, previous_purchases, previous_created
          FROM credit_ledger
         WHERE business_id = NEW.business_id
           AND customer_id = NEW.customer_id
           AND seq = NEW.seq - 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'ledger chain broken: customer % has no entry %', NEW.customer_id, NEW.seq - 1
                USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_chain';
        END IF;
    END IF;

    IF NEW.balance_after IS DISTINCT FROM previous_balance + NEW.amount THEN
        RAISE EXCEPTION 'ledger chain broken: % + % <> %', previous_balance, NEW.amount, NEW.balance_after
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_chain';
    END IF;
    IF NEW.created_at < previous_created THEN
        RAISE EXCEPTION 'ledger chain broken: entry % at % is earlier than the entry before it, at %',
                        NEW.seq, NEW.created_at, previous_created
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_in_time_order';
    END IF;

    -- Whatever the writer sent: the running sum of the customer's purchases.
    purchased := CASE WHEN NEW.kind = 'purchase' THEN NEW.amount ELSE 0 END;
    IF previous_purchases > 9223372036854775807 - purchased THEN
        RAISE EXCEPTION 'lifetime purchases of customer % exceed the largest representable amount', NEW.customer_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_purchases_to_date_range';
    END IF;
    NEW.purchases_to_date := previous_purchases + purchased;

    -- FOR SHARE conflicts with the lock an UPDATE of the customer takes
    -- (FOR NO KEY UPDATE; KEY SHARE would not), so an entry and a change of
    -- limit, status or terms are ordered: an entry racing a change waits for
    -- it, then reads the new values. The use cases hold the customer FOR
    -- UPDATE already, so for them it costs nothing.
    SELECT credit_limit, status, payment_terms_days,
           held - ontab_expired_hold_credit(NEW.business_id, NEW.customer_id) AS held
      INTO customer
      FROM customers
     WHERE business_id = NEW.business_id AND id = NEW.customer_id
       FOR SHARE;
    IF NOT FOUND THEN
        -- The foreign key's own refusal, made before anything here reads a
        -- customer that is not there.
        RAISE EXCEPTION 'insert on table "credit_ledger" violates foreign key constraint "credit_ledger_business_id_customer_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'credit_ledger_business_id_customer_id_fkey',
                  DETAIL = format('Business %s has no customer %s.', NEW.business_id, NEW.customer_id);
    END IF;
    IF customer.status = 'closed' THEN
        RAISE EXCEPTION 'customer % is closed: no money moves for it', NEW.customer_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_customer_not_closed';
    END IF;
    IF NEW.kind = 'purchase' THEN
        IF customer.status <> 'active' THEN
            RAISE EXCEPTION 'customer % is %: it may not buy', NEW.customer_id, customer.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_purchase_by_active_customer';
        END IF;
        -- Pending holds count against the limit; a capture's own credit was
        -- reserved by its hold (which it releases), so a limit lowered since
        -- blocks new purchases and holds only.
        IF NEW.hold_id IS NULL AND NEW.balance_after + customer.held > customer.credit_limit THEN
            RAISE EXCEPTION 'credit limit exceeded: balance % and % held above limit %',
                            NEW.balance_after, customer.held, customer.credit_limit
                USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_within_limit';
        END IF;
        -- Due after exactly the terms in force: derived when the writer
        -- sent none, checked when it did.
        NEW.due_at := coalesce(NEW.due_at, NEW.created_at + make_interval(days => customer.payment_terms_days));
        IF NEW.due_at IS DISTINCT FROM NEW.created_at + make_interval(days => customer.payment_terms_days) THEN
            RAISE EXCEPTION 'purchase due at % is not % + the customer''s % days of terms',
                            NEW.due_at, NEW.created_at, customer.payment_terms_days
                USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_due_on_terms';
        END IF;
    ELSIF NEW.kind IN ('payment', 'write_off') AND NEW.balance_after < 0 THEN
        RAISE EXCEPTION '% exceeds balance: balance would be %', NEW.kind, NEW.balance_after
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_payment_within_balance';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION public.ontab_check_ledger_chain() OWNER TO postgres;

--
-- Name: ontab_check_order_complete(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_order_complete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    ledger_amount bigint;
BEGIN
    -- A capture is recorded as its hold's ending, in the same transaction:
    -- a hold's order never exists without the hold having ended by it.
    IF NEW.hold_id IS NOT NULL THEN
        PERFORM 1 FROM hold_endings e
         WHERE e.business_id = NEW.business_id AND e.hold_id = NEW.hold_id
           AND e.outcome = 'captured' AND e.order_id = NEW.id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'order % captures hold %, which did not end captured by it', NEW.id, NEW.hold_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_capture_ends_hold';
        END IF;
    END IF;
    PERFORM 1 FROM order_items
     WHERE business_id = NEW.business_id AND order_id = NEW.id
     LIMIT 1;
    IF NOT FOUND THEN
        SELECT amount INTO ledger_amount
          FROM credit_ledger
         WHERE business_id = NEW.business_id AND order_id = NEW.id AND kind = 'purchase';
        RAISE EXCEPTION 'order % is inconsistent: total %, lines %, ledger %',
                        NEW.id, NEW.total, NULL, ledger_amount
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_complete';
    END IF;
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_check_order_complete() OWNER TO postgres;

--
-- Name: ontab_check_order_of_line(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_order_of_line() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    order_total bigint;
    order_due timestamptz;
    order_hold uuid;
    lines_total numeric;
    ledger_amount bigint;
    ledger_due timestamptz;
    ledger_hold uuid;
    held record;
BEGIN
    SELECT o.total, o.due_at, o.hold_id, li.total, l.amount, l.due_at, l.hold_id
      INTO order_total, order_due, order_hold, lines_total, ledger_amount, ledger_due, ledger_hold
      FROM (SELECT 1) AS one
      LEFT JOIN orders o ON o.business_id = NEW.business_id AND o.id = NEW.order_id
      LEFT JOIN LATERAL (SELECT sum(i.line_total) AS total FROM order_items i
                          WHERE i.business_id = NEW.business_id AND i.order_id = NEW.order_id) li ON true
      LEFT JOIN credit_ledger l
             ON l.business_id = NEW.business_id AND l.order_id = NEW.order_id AND l.kind = 'purchase';
    -- A capture's line: a line of its hold, at the hold's price, within
    -- what it held.
    IF order_hold IS NOT NULL THEN
        SELECT h.quantity, h.unit_price INTO held
          FROM hold_items h
         WHERE h.business_id = NEW.business_id AND h.hold_id = order_hold AND h.product_id = NEW.product_id;
        IF NOT FOUND OR NEW.quantity > held.quantity OR NEW.unit_price IS DISTINCT FROM held.unit_price THEN
            RAISE EXCEPTION 'order % captures % of product % at %, which hold % did not hold',
                            NEW.order_id, NEW.quantity, NEW.product_id, NEW.unit_price, order_hold
                USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_capture_within_hold';
        END IF;
    END IF;
    IF order_total IS NULL OR lines_total IS DISTINCT FROM order_total
       OR ledger_amount IS DISTINCT FROM order_total OR ledger_due IS DISTINCT FROM order_due
       OR ledger_hold IS DISTINCT FROM order_hold THEN
        RAISE EXCEPTION 'order % is inconsistent: total %, lines %, ledger %, due at % but its entry at %, hold % but its entry %',
                        NEW.order_id, order_total, lines_total, ledger_amount, order_due, ledger_due,
                        order_hold, ledger_hold
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_complete';
    END IF;
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_check_order_of_line() OWNER TO postgres;

--
-- Name: ontab_check_pending_hold(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_pending_hold() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM ontab_check_release(OLD.business_id, OLD.hold_id, OLD.expires_at);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE'
       OR EXISTS (SELECT 1 FROM hold_endings e WHERE e.business_id = NEW.business_id AND e.hold_id = NEW.hold_id)
       OR NOT EXISTS (SELECT 1 FROM holds h
                       WHERE h.business_id = NEW.business_id AND h.id = NEW.hold_id
                         AND h.customer_id = NEW.customer_id AND h.total = NEW.total
                         AND h.expires_at = NEW.expires_at) THEN
        RAISE EXCEPTION 'hold %: a reservation is the pending hold''s own, made once and never edited', NEW.hold_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'holds_reserve_what_they_hold';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION public.ontab_check_pending_hold() OWNER TO postgres;

--
-- Name: ontab_check_pending_hold_item(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_pending_hold_item() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM ontab_check_release(OLD.business_id, OLD.hold_id, OLD.expires_at);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE'
       OR EXISTS (SELECT 1 FROM hold_endings e WHERE e.business_id = NEW.business_id AND e.hold_id = NEW.hold_id)
       OR NOT EXISTS (SELECT 1 FROM hold_items i JOIN holds h ON h.business_id = i.business_id AND h.id = i.hold_id
                       WHERE i.business_id = NEW.business_id AND i.hold_id = NEW.hold_id
                         AND i.product_id = NEW.product_id AND i.quantity = NEW.quantity
                         AND h.expires_at = NEW.expires_at) THEN
        RAISE EXCEPTION 'hold %: a reservation is the pending hold''s own, made once and never edited', NEW.hold_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'holds_reserve_what_they_hold';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION public.ontab_check_pending_hold_item() OWNER TO postgres;

--
-- Name: ontab_check_release(uuid, uuid, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_release(p_business uuid, p_hold uuid, p_expires_at timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF p_expires_at > now()
       AND NOT EXISTS (SELECT 1 FROM hold_endings e WHERE e.business_id = p_business AND e.hold_id = p_hold) THEN
        RAISE EXCEPTION 'hold % is pending until %: its reservation is released only when it ends',
                        p_hold, p_expires_at
            USING ERRCODE = 'check_violation', CONSTRAINT = 'holds_released_when_ended';
    END IF;
END
$$;

ALTER FUNCTION public.ontab_check_release(p_business uuid, p_hold uuid, p_expires_at timestamp with time zone) OWNER TO postgres;

--
-- Name: ontab_check_return_complete(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_return_complete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    lines_total numeric;
    ledger_amount bigint;
BEGIN
    SELECT sum(line_total) INTO lines_total
      FROM return_items
     WHERE business_id = NEW.business_id AND return_id = NEW.id;
    SELECT -amount INTO ledger_amount
      FROM credit_ledger
     WHERE business_id = NEW.business_id AND return_id = NEW.id AND kind = 'return';
    IF lines_total IS DISTINCT FROM NEW.amount OR ledger_amount IS DISTINCT FROM NEW.amount THEN
        RAISE EXCEPTION 'return % is inconsistent: amount %, lines %, ledger %',
                        NEW.id, NEW.amount, lines_total, ledger_amount
            USING ERRCODE = 'check_violation', CONSTRAINT = 'returns_complete';
    END IF;
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_check_return_complete() OWNER TO postgres;

--
-- Name: ontab_check_return_line(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_return_line() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    bought bigint;
    bought_price bigint;
    already_returned numeric;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.business_id::text || NEW.order_id::text, 0));
    SELECT quantity, unit_price INTO bought, bought_price
      FROM order_items
     WHERE business_id = NEW.business_id AND order_id = NEW.order_id AND product_id = NEW.product_id;
    SELECT coalesce(sum(quantity), 0) INTO already_returned
      FROM return_items
     WHERE business_id = NEW.business_id AND order_id = NEW.order_id AND product_id = NEW.product_id;
    IF NEW.quantity > bought - already_returned THEN
        RAISE EXCEPTION 'return exceeds purchase: % returned of % bought, % more asked',
                        already_returned, bought, NEW.quantity
            USING ERRCODE = 'check_violation', CONSTRAINT = 'return_items_within_purchase';
    END IF;
    IF NEW.unit_price IS DISTINCT FROM bought_price THEN
        RAISE EXCEPTION 'return price % differs from order price %', NEW.unit_price, bought_price
            USING ERRCODE = 'check_violation', CONSTRAINT = 'return_items_order_price';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION public.ontab_check_return_line() OWNER TO postgres;

--
-- Name: ontab_check_return_of_line(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_check_return_of_line() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    return_amount bigint;
    lines_total numeric;
    ledger_amount bigint;
BEGIN
    SELECT amount INTO return_amount
      FROM returns
     WHERE business_id = NEW.business_id AND id = NEW.return_id;
    SELECT sum(line_total) INTO lines_total
      FROM return_items
     WHERE business_id = NEW.business_id AND return_id = NEW.return_id;
    SELECT -amount INTO ledger_amount
      FROM credit_ledger
     WHERE business_id = NEW.business_id AND return_id = NEW.return_id AND kind = 'return';
    IF return_amount IS NULL OR lines_total IS DISTINCT FROM return_amount
       OR ledger_amount IS DISTINCT FROM return_amount THEN
        RAISE EXCEPTION 'return % is inconsistent: amount %, lines %, ledger %',
                        NEW.return_id, return_amount, lines_total, ledger_amount
            USING ERRCODE = 'check_violation', CONSTRAINT = 'returns_complete';
    END IF;
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_check_return_of_line() OWNER TO postgres;

--
-- Name: ontab_claim_webhook_deliveries(uuid, integer, integer); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_claim_webhook_deliveries(p_lease uuid, p_lease_ms integer, p_limit integer) RETURNS TABLE(business_id uuid, delivery_id uuid)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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

ALTER FUNCTION public.ontab_claim_webhook_deliveries(p_lease uuid, p_lease_ms integer, p_limit integer) OWNER TO ontab_system;

--
-- Name: ontab_credit(uuid, uuid, bigint, text, text); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_credit(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_kind text, p_reason text) RETURNS jsonb
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    account_status text;
    head record;
    created timestamptz;
BEGIN
    SELECT status INTO account_status FROM customers WHERE business_id = tenant AND id = p_customer_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'customer', 'id', p_customer_id);
    END IF;
    IF account_status = 'closed' THEN
        RETURN ontab_account_refusal(p_customer_id, account_status, false);
    END IF;

    head := ontab_ledger_head(tenant, p_customer_id);
    IF p_amount > head.balance THEN
        RETURN jsonb_build_object('error', p_kind || '_exceeds_balance', 'balance', head.balance, 'amount', p_amount);
    END IF;

    created := greatest(now(), head.created);
    INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, created_at, reason)
    VALUES (tenant, p_entry_id, p_customer_id, head.seq + 1, p_kind, -p_amount, head.balance - p_amount,
            created, p_reason);

    RETURN jsonb_build_object('entry', jsonb_build_object(
        'id', p_entry_id, 'customer_id', p_customer_id, 'kind', p_kind, 'amount', -p_amount,
        'balance_after', head.balance - p_amount, 'order_id', NULL, 'return_id', NULL,
        'due_at', NULL, 'reason', p_reason, 'seq', head.seq + 1, 'created_at', created));
END
$$;

ALTER FUNCTION public.ontab_credit(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_kind text, p_reason text) OWNER TO ontab_writer;

--
-- Name: ontab_customer_events(); Type: FUNCTION; Schema: public; Owner: ontab_outbox
--

CREATE FUNCTION public.ontab_customer_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(),
            CASE WHEN TG_OP = 'INSERT' THEN 'customer.created' ELSE 'customer.updated' END,
            NEW.id, ontab_customer_json(NEW.business_id, NEW.id));
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_customer_events() OWNER TO ontab_outbox;

--
-- Name: ontab_customer_json(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_customer_json(p_business uuid, p_customer uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
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

ALTER FUNCTION public.ontab_customer_json(p_business uuid, p_customer uuid) OWNER TO postgres;

--
-- Name: ontab_default_customer_terms(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_default_customer_terms() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    SELECT b.payment_terms_days INTO NEW.payment_terms_days
      FROM businesses b
     WHERE b.id = NEW.business_id;
    RETURN NEW;
END
$$;

ALTER FUNCTION public.ontab_default_customer_terms() OWNER TO postgres;

--
-- Name: ontab_end_hold(uuid, uuid, text, uuid); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_end_hold(p_business uuid, p_hold uuid, p_outcome text, p_order uuid) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO hold_endings (business_id, hold_id, outcome, order_id) VALUES (p_business, p_hold, p_outcome, p_order);
    DELETE FROM pending_hold_items WHERE business_id = p_business AND hold_id = p_hold;
    DELETE FROM pending_holds WHERE business_id = p_business AND hold_id = p_hold;
END
$$;

ALTER FUNCTION public.ontab_end_hold(p_business uuid, p_hold uuid, p_outcome text, p_order uuid) OWNER TO ontab_writer;

--
-- Name: ontab_entry_json(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_entry_json(p_business uuid, p_entry uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
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

ALTER FUNCTION public.ontab_entry_json(p_business uuid, p_entry uuid) OWNER TO postgres;

--
-- Name: ontab_event_business_ids(); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_event_business_ids() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT b.id FROM public.businesses b ORDER BY b.id
$$;

ALTER FUNCTION public.ontab_event_business_ids() OWNER TO ontab_system;

--
-- Name: ontab_event_prune_limit(uuid); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_event_prune_limit(p_business uuid) RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN least(
        (SELECT min(e.settled_through) + 1
           FROM webhook_endpoints e
          WHERE e.business_id = p_business),
        (SELECT min(d.sequence)
           FROM webhook_deliveries d
           JOIN webhook_endpoints e ON e.business_id = d.business_id AND e.id = d.endpoint_id
          WHERE d.business_id = p_business AND d.state = 'pending' AND NOT e.disabled));
END
$$;

ALTER FUNCTION public.ontab_event_prune_limit(p_business uuid) OWNER TO ontab_system;

--
-- Name: ontab_expire_hold(uuid); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_expire_hold(p_hold_id uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    hold record;
    outcome text;
BEGIN
    hold := ontab_lock_hold(tenant, p_hold_id);
    IF hold.customer_id IS NULL THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'hold', 'id', p_hold_id);
    END IF;
    SELECT e.outcome INTO outcome FROM hold_endings e WHERE e.business_id = tenant AND e.hold_id = p_hold_id;
    IF FOUND THEN
        RETURN jsonb_build_object('error', 'hold_not_pending', 'status', outcome);
    END IF;
    IF hold.expires_at > now() THEN
        RETURN jsonb_build_object('error', 'hold_not_pending', 'status', 'pending');
    END IF;
    PERFORM ontab_end_hold(tenant, p_hold_id, 'expired', NULL);
    RETURN jsonb_build_object('hold', ontab_hold_view(tenant, p_hold_id));
END
$$;

ALTER FUNCTION public.ontab_expire_hold(p_hold_id uuid) OWNER TO ontab_writer;

--
-- Name: ontab_expire_hold_for(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_expire_hold_for(p_hold_id uuid, p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_expire_hold(p_hold_id);
END
$$;

ALTER FUNCTION public.ontab_expire_hold_for(p_hold_id uuid, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_expire_idempotency_keys(interval); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_expire_idempotency_keys(p_older_than interval) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    gone bigint;
BEGIN
    DELETE FROM public.idempotency_keys
     WHERE created_at < now() - greatest(p_older_than, interval '24 hours');
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END
$$;

ALTER FUNCTION public.ontab_expire_idempotency_keys(p_older_than interval) OWNER TO ontab_system;

--
-- Name: ontab_expired_hold_credit(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_expired_hold_credit(p_business uuid, p_customer uuid) RETURNS bigint
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT coalesce(sum(p.total), 0)::bigint
              FROM pending_holds p
             WHERE p.business_id = p_business AND p.customer_id = p_customer
               AND p.expires_at <= now());
END
$$;

ALTER FUNCTION public.ontab_expired_hold_credit(p_business uuid, p_customer uuid) OWNER TO postgres;

--
-- Name: ontab_expired_holds(integer); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_expired_holds(p_limit integer) RETURNS TABLE(business_id uuid, hold_id uuid)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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

ALTER FUNCTION public.ontab_expired_holds(p_limit integer) OWNER TO ontab_system;

--
-- Name: ontab_expired_reserve(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_expired_reserve(p_business uuid, p_product uuid) RETURNS bigint
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT coalesce(sum(i.quantity), 0)::bigint
              FROM pending_hold_items i
             WHERE i.business_id = p_business AND i.product_id = p_product
               AND i.expires_at <= now());
END
$$;

ALTER FUNCTION public.ontab_expired_reserve(p_business uuid, p_product uuid) OWNER TO postgres;

--
-- Name: ontab_hold(uuid, uuid, uuid[], bigint[], integer); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_hold(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    customer record;
    customer_found boolean;
    missing_product uuid;
    head record;
    line record;
    locked uuid;
    hold_total numeric := 0::numeric;
    short_product uuid;
    short_requested bigint;
    short_available bigint;
    created timestamptz := now();
    expires timestamptz;
BEGIN
    IF p_expires_in IS NULL OR p_expires_in NOT BETWEEN 1 AND 2592000 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'expires_in',
                                  'message', 'must be between 1 and 2592000 seconds');
    END IF;
    PERFORM 1 FROM customers WHERE business_id = tenant AND id = p_customer_id FOR UPDATE;
    customer_found := FOUND;
    PERFORM ontab_release_expired_credit(tenant, ARRAY[p_customer_id]);
    SELECT credit_limit, status, held INTO customer
      FROM customers
     WHERE business_id = tenant AND id = p_customer_id;

    FOR locked IN SELECT DISTINCT x FROM unnest(p_product_ids) AS x ORDER BY 1 LOOP
        PERFORM 1 FROM products WHERE business_id = tenant AND id = locked FOR NO KEY UPDATE;
    END LOOP;
    PERFORM ontab_release_expired(tenant, p_product_ids);

    FOR line IN
        SELECT l.product_id, l.quantity, p.price, p.stock - p.reserved AS available
          FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          LEFT JOIN LATERAL (SELECT pr.price, pr.stock, pr.reserved FROM products pr
                              WHERE pr.business_id = tenant AND pr.id = l.product_id LIMIT 1) p ON true
         ORDER BY l.ord
    LOOP
        IF line.price IS NULL THEN
            missing_product := coalesce(missing_product, line.product_id);
            CONTINUE;
        END IF;
        IF short_product IS NULL AND line.available < line.quantity THEN
            short_product := line.product_id;
            short_requested := line.quantity;
            short_available := line.available;
        END IF;
        hold_total := hold_total + line.price::numeric * line.quantity;
    END LOOP;

    IF hold_total > 9007199254740991 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                  'message', 'the hold total exceeds 9007199254740991 (2^53 - 1)');
    END IF;
    IF NOT customer_found THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'customer', 'id', p_customer_id);
    END IF;
    head := ontab_ledger_head(tenant, p_customer_id);
    IF missing_product IS NOT NULL THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'product', 'id', missing_product);
    END IF;
    IF customer.status <> 'active' THEN
        RETURN ontab_account_refusal(p_customer_id, customer.status, true);
    END IF;
    IF short_product IS NOT NULL THEN
        RETURN jsonb_build_object('error', 'insufficient_stock', 'product_id', short_product,
                                  'requested', short_requested, 'available', short_available);
    END IF;
    IF head.balance + customer.held + hold_total > customer.credit_limit THEN
        RETURN jsonb_build_object('error', 'credit_limit_exceeded', 'credit_limit', customer.credit_limit,
                                  'balance', head.balance, 'held', customer.held,
                                  'order_total', hold_total::bigint);
    END IF;
    -- A limit of representation (a customer far in credit could hold more
    -- than 2^53 - 1 in all): checked last, like the purchase's.
    IF customer.held::numeric + hold_total > 9007199254740991 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                  'message', 'the customer''s held credit would exceed 9007199254740991 (2^53 - 1)');
    END IF;

    expires := created + make_interval(secs => p_expires_in);
    INSERT INTO holds (business_id, id, customer_id, total, created_at, expires_at)
    VALUES (tenant, p_hold_id, p_customer_id, hold_total, created, expires);
    INSERT INTO hold_items (business_id, hold_id, line_no, product_id, quantity, unit_price, line_total)
    SELECT tenant, p_hold_id, l.ord, l.product_id, l.quantity, p.price, p.price * l.quantity
      FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
      CROSS JOIN LATERAL (SELECT pr.price FROM products pr
                           WHERE pr.business_id = tenant AND pr.id = l.product_id LIMIT 1) p;
    INSERT INTO pending_holds (business_id, hold_id, customer_id, total, expires_at)
    VALUES (tenant, p_hold_id, p_customer_id, hold_total, expires);
    INSERT INTO pending_hold_items (business_id, hold_id, product_id, quantity, expires_at)
    SELECT tenant, p_hold_id, l.product_id, l.quantity, expires
      FROM unnest(p_product_ids, p_quantities) AS l (product_id, quantity);

    RETURN jsonb_build_object('hold', ontab_hold_view(tenant, p_hold_id));
END
$$;

ALTER FUNCTION public.ontab_hold(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer) OWNER TO ontab_writer;

--
-- Name: ontab_hold_created_events(); Type: FUNCTION; Schema: public; Owner: ontab_outbox
--

CREATE FUNCTION public.ontab_hold_created_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(), 'hold.created', NEW.customer_id,
            ontab_hold_json(NEW.business_id, NEW.hold_id));
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_hold_created_events() OWNER TO ontab_outbox;

--
-- Name: ontab_hold_ended_events(); Type: FUNCTION; Schema: public; Owner: ontab_outbox
--

CREATE FUNCTION public.ontab_hold_ended_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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

ALTER FUNCTION public.ontab_hold_ended_events() OWNER TO ontab_outbox;

--
-- Name: ontab_hold_for(uuid, uuid, uuid[], bigint[], integer, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_hold_for(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer, p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_hold(p_hold_id, p_customer_id, p_product_ids, p_quantities, p_expires_in);
END
$$;

ALTER FUNCTION public.ontab_hold_for(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_hold_json(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_hold_json(p_business uuid, p_hold uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    v jsonb := ontab_hold_view(p_business, p_hold);
BEGIN
    RETURN v || jsonb_build_object(
                    'created_at', ontab_json_time((v ->> 'created_at')::timestamptz),
                    'expires_at', ontab_json_time((v ->> 'expires_at')::timestamptz),
                    'ended_at', ontab_json_time((v ->> 'ended_at')::timestamptz));
END
$$;

ALTER FUNCTION public.ontab_hold_json(p_business uuid, p_hold uuid) OWNER TO postgres;

--
-- Name: ontab_hold_refusal(uuid, uuid, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_hold_refusal(p_business uuid, p_hold uuid, p_expires_at timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    outcome text;
BEGIN
    SELECT e.outcome INTO outcome FROM hold_endings e WHERE e.business_id = p_business AND e.hold_id = p_hold;
    IF FOUND THEN
        RETURN jsonb_build_object('error', 'hold_not_pending', 'status', outcome);
    END IF;
    IF p_expires_at <= now()
       OR NOT EXISTS (SELECT 1 FROM pending_holds p WHERE p.business_id = p_business AND p.hold_id = p_hold)
       OR EXISTS (SELECT 1 FROM hold_items i
                   WHERE i.business_id = p_business AND i.hold_id = p_hold
                     AND NOT EXISTS (SELECT 1 FROM pending_hold_items p
                                      WHERE p.business_id = i.business_id AND p.hold_id = i.hold_id
                                        AND p.product_id = i.product_id)) THEN
        RETURN jsonb_build_object('error', 'hold_not_pending', 'status', 'expired');
    END IF;
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_hold_refusal(p_business uuid, p_hold uuid, p_expires_at timestamp with time zone) OWNER TO postgres;

--
-- Name: ontab_hold_view(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_hold_view(p_business uuid, p_hold uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
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

ALTER FUNCTION public.ontab_hold_view(p_business uuid, p_hold uuid) OWNER TO postgres;

--
-- Name: ontab_json_time(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_json_time(t timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
           || CASE WHEN date_part('microseconds', t AT TIME ZONE 'UTC')::bigint % 1000000 = 0 THEN ''
                   WHEN date_part('microseconds', t AT TIME ZONE 'UTC')::bigint % 1000 = 0
                       THEN '.' || lpad((date_part('microseconds', t AT TIME ZONE 'UTC')::bigint % 1000000 / 1000)::text, 3, '0')
                   ELSE '.' || lpad((date_part('microseconds', t AT TIME ZONE 'UTC')::bigint % 1000000)::text, 6, '0') END
           || 'Z'
$$;

ALTER FUNCTION public.ontab_json_time(t timestamp with time zone) OWNER TO postgres;

--
-- Name: ontab_keep_held(); Type: FUNCTION; Schema: public; Owner: ontab_reserver
--

CREATE FUNCTION public.ontab_keep_held() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE customers SET held = held + NEW.total WHERE business_id = NEW.business_id AND id = NEW.customer_id;
    ELSE
        UPDATE customers SET held = held - OLD.total WHERE business_id = OLD.business_id AND id = OLD.customer_id;
    END IF;
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_keep_held() OWNER TO ontab_reserver;

--
-- Name: ontab_keep_initial_stock(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_keep_initial_stock() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    IF NEW.initial_stock IS DISTINCT FROM OLD.initial_stock
       OR NEW.business_id IS DISTINCT FROM OLD.business_id
       OR NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'products.initial_stock, business_id and id are immutable'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION public.ontab_keep_initial_stock() OWNER TO postgres;

--
-- Name: ontab_keep_reserved(); Type: FUNCTION; Schema: public; Owner: ontab_reserver
--

CREATE FUNCTION public.ontab_keep_reserved() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE products SET reserved = reserved + NEW.quantity
         WHERE business_id = NEW.business_id AND id = NEW.product_id;
    ELSE
        UPDATE products SET reserved = reserved - OLD.quantity
         WHERE business_id = OLD.business_id AND id = OLD.product_id;
    END IF;
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_keep_reserved() OWNER TO ontab_reserver;

--
-- Name: ontab_ledger_events(); Type: FUNCTION; Schema: public; Owner: ontab_outbox
--

CREATE FUNCTION public.ontab_ledger_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    entry record;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        INSERT INTO events (business_id, id, type, subject_id, data)
        SELECT n.business_id, ontab_uuid_v7(),
               CASE n.kind WHEN 'purchase' THEN 'purchase.created' WHEN 'payment' THEN 'payment.recorded'
                           WHEN 'return' THEN 'return.recorded' ELSE 'write_off.recorded' END,
               n.customer_id,
               CASE n.kind WHEN 'purchase' THEN ontab_order_json(n.business_id, n.order_id)
                           WHEN 'return' THEN ontab_return_json(n.business_id, n.return_id)
                           ELSE ontab_entry_json(n.business_id, n.id) END
          FROM new_entries n
         ORDER BY n.customer_id, n.seq;
        RETURN NULL;
    END IF;
    -- Citus: one INSERT per entry (0014).
    FOR entry IN SELECT e.business_id, e.id, e.kind, e.customer_id, e.order_id, e.return_id
                   FROM new_entries e
                  ORDER BY e.customer_id, e.seq
    LOOP
        INSERT INTO events (business_id, id, type, subject_id, data)
        VALUES (entry.business_id, ontab_uuid_v7(),
                CASE WHEN entry.kind = 'purchase' THEN 'purchase.created'
                     WHEN entry.kind = 'payment' THEN 'payment.recorded'
                     WHEN entry.kind = 'return' THEN 'return.recorded'
                     ELSE 'write_off.recorded' END,
                entry.customer_id,
                CASE WHEN entry.kind = 'purchase' THEN ontab_order_json(entry.business_id, entry.order_id)
                     WHEN entry.kind = 'return' THEN ontab_return_json(entry.business_id, entry.return_id)
                     ELSE ontab_entry_json(entry.business_id, entry.id) END);
    END LOOP;
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_ledger_events() OWNER TO ontab_outbox;

--
-- Name: ontab_ledger_head(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_ledger_head(p_business uuid, p_customer uuid, OUT seq bigint, OUT balance bigint, OUT created timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    SELECT c.seq, c.balance_after, c.created_at INTO seq, balance, created
      FROM credit_ledger c
     WHERE c.business_id = p_business AND c.customer_id = p_customer
     ORDER BY c.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        seq := 0;
        balance := 0;
        created := '-infinity';
    END IF;
END
$$;

ALTER FUNCTION public.ontab_ledger_head(p_business uuid, p_customer uuid, OUT seq bigint, OUT balance bigint, OUT created timestamp with time zone) OWNER TO postgres;

--
-- Name: ontab_lock_hold(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_lock_hold(p_business uuid, p_hold uuid, OUT customer_id uuid, OUT expires_at timestamp with time zone, OUT status text, OUT payment_terms_days integer) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
    locked uuid;
BEGIN
    SELECT h.customer_id, h.expires_at INTO customer_id, expires_at
      FROM holds h WHERE h.business_id = p_business AND h.id = p_hold;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT c.status, c.payment_terms_days INTO status, payment_terms_days
      FROM customers c WHERE c.business_id = p_business AND c.id = customer_id
       FOR UPDATE;
    FOR locked IN SELECT i.product_id FROM hold_items i
                   WHERE i.business_id = p_business AND i.hold_id = p_hold ORDER BY i.product_id LOOP
        PERFORM 1 FROM products p WHERE p.business_id = p_business AND p.id = locked FOR NO KEY UPDATE;
    END LOOP;
END
$$;

ALTER FUNCTION public.ontab_lock_hold(p_business uuid, p_hold uuid, OUT customer_id uuid, OUT expires_at timestamp with time zone, OUT status text, OUT payment_terms_days integer) OWNER TO postgres;

--
-- Name: ontab_nats_due(integer); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_nats_due(p_limit integer) RETURNS SETOF uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    found_due bigint;
BEGIN
    RETURN QUERY
    SELECT c.business_id
      FROM public.nats_cursors c
     WHERE EXISTS (SELECT 1 FROM public.events ev
                    WHERE ev.business_id = c.business_id
                      AND ev.sequence = c.published_through + 1)
     LIMIT p_limit;
    GET DIAGNOSTICS found_due = ROW_COUNT;
    RETURN QUERY
    SELECT b.id
      FROM public.businesses b
     WHERE b.id NOT IN (SELECT c.business_id FROM public.nats_cursors c)
     LIMIT greatest(p_limit - found_due, 0);
END
$$;

ALTER FUNCTION public.ontab_nats_due(p_limit integer) OWNER TO ontab_system;

--
-- Name: ontab_order_json(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_order_json(p_business uuid, p_order uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
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

ALTER FUNCTION public.ontab_order_json(p_business uuid, p_order uuid) OWNER TO postgres;

--
-- Name: ontab_pay(uuid, uuid, bigint); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_pay(p_entry_id uuid, p_customer_id uuid, p_amount bigint) RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT ontab_credit(p_entry_id, p_customer_id, p_amount, 'payment', NULL)
$$;

ALTER FUNCTION public.ontab_pay(p_entry_id uuid, p_customer_id uuid, p_amount bigint) OWNER TO ontab_writer;

--
-- Name: ontab_pay_for(uuid, uuid, bigint, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_pay_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_pay(p_entry_id, p_customer_id, p_amount);
END
$$;

ALTER FUNCTION public.ontab_pay_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_product_events(); Type: FUNCTION; Schema: public; Owner: ontab_outbox
--

CREATE FUNCTION public.ontab_product_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(),
            CASE WHEN TG_OP = 'INSERT' THEN 'product.created' ELSE 'product.updated' END,
            NEW.id, ontab_product_json(NEW.business_id, NEW.id));
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_product_events() OWNER TO ontab_outbox;

--
-- Name: ontab_product_json(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_product_json(p_business uuid, p_product uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
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

ALTER FUNCTION public.ontab_product_json(p_business uuid, p_product uuid) OWNER TO postgres;

--
-- Name: ontab_prune_events(timestamp with time zone, integer); Type: FUNCTION; Schema: public; Owner: ontab_sequencer
--

CREATE FUNCTION public.ontab_prune_events(p_before timestamp with time zone, p_limit integer) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    ceiling bigint := ontab_event_prune_limit(tenant);
    v_stop bigint;
    v_last bigint;
    through bigint;
    removed bigint;
    r record;
BEGIN
    PERFORM 1 FROM event_sequences s WHERE s.business_id = tenant FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    -- One endpoint at a time, each a range of the attempts' listing index.
    FOR r IN SELECT e.id FROM webhook_endpoints e WHERE e.business_id = tenant ORDER BY e.id LOOP
        DELETE FROM webhook_attempts a
         WHERE a.business_id = tenant AND a.endpoint_id = r.id AND a.attempted_at < p_before
           AND a.delivery_id IS NULL;
    END LOOP;
    -- Among the oldest p_limit, the first that must stay (written since
    -- p_before, or still owed to a webhook) and the last.
    SELECT min(o.sequence) FILTER (WHERE o.created_at >= p_before OR o.sequence >= ceiling),
           max(o.sequence)
      INTO v_stop, v_last
      FROM (SELECT e.sequence, e.created_at
              FROM events e
             WHERE e.business_id = tenant AND e.sequence IS NOT NULL
             ORDER BY e.sequence
             LIMIT p_limit) o;
    through := least(v_last, v_stop - 1);
    IF through IS NULL THEN
        RETURN 0;
    END IF;
    FOR r IN
        SELECT e.type, count(*) AS pruned
          FROM events e
         WHERE e.business_id = tenant AND e.sequence <= through
         GROUP BY e.type
         ORDER BY e.type
    LOOP
        INSERT INTO events_pruned AS p (business_id, type, pruned)
        VALUES (tenant, r.type, r.pruned)
        ON CONFLICT (business_id, type) DO UPDATE SET pruned = p.pruned + excluded.pruned;
    END LOOP;
    DELETE FROM events e WHERE e.business_id = tenant AND e.sequence <= through;
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed > 0 THEN
        UPDATE event_sequences SET pruned_through = through WHERE business_id = tenant;
    END IF;
    RETURN removed;
END
$$;

ALTER FUNCTION public.ontab_prune_events(p_before timestamp with time zone, p_limit integer) OWNER TO ontab_sequencer;

--
-- Name: ontab_prune_events_for(timestamp with time zone, integer, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_prune_events_for(p_before timestamp with time zone, p_limit integer, p_business uuid) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_prune_events(p_before, p_limit);
END
$$;

ALTER FUNCTION public.ontab_prune_events_for(p_before timestamp with time zone, p_limit integer, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_purchase(uuid, uuid, uuid, uuid[], bigint[]); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_purchase(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[]) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    customer record;
    customer_found boolean;
    missing_product uuid;
    head record;
    line record;
    locked uuid;
    order_total numeric := 0::numeric;
    short_product uuid;
    short_requested bigint;
    short_available bigint;
    created timestamptz;
    due timestamptz;
    items jsonb;
BEGIN
    PERFORM 1 FROM customers WHERE business_id = tenant AND id = p_customer_id FOR UPDATE;
    customer_found := FOUND;
    PERFORM ontab_release_expired_credit(tenant, ARRAY[p_customer_id]);
    SELECT credit_limit, status, payment_terms_days, held INTO customer
      FROM customers
     WHERE business_id = tenant AND id = p_customer_id;

    FOR locked IN SELECT DISTINCT x FROM unnest(p_product_ids) AS x ORDER BY 1 LOOP
        PERFORM 1 FROM products WHERE business_id = tenant AND id = locked FOR NO KEY UPDATE;
    END LOOP;
    PERFORM ontab_release_expired(tenant, p_product_ids);

    -- Lines arrive merged (one per product) in request order.
    FOR line IN
        SELECT l.product_id, l.quantity, p.price, p.stock - p.reserved AS stock
          FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          LEFT JOIN LATERAL (SELECT pr.price, pr.stock, pr.reserved FROM products pr
                              WHERE pr.business_id = tenant AND pr.id = l.product_id LIMIT 1) p ON true
         ORDER BY l.ord
    LOOP
        IF line.price IS NULL THEN
            missing_product := coalesce(missing_product, line.product_id);
            CONTINUE;
        END IF;
        IF short_product IS NULL AND line.stock < line.quantity THEN
            short_product := line.product_id;
            short_requested := line.quantity;
            short_available := line.stock;
        END IF;
        order_total := order_total + line.price::numeric * line.quantity;
    END LOOP;

    -- Amounts stay within 2^53 - 1, which every JSON client reads exactly.
    IF order_total > 9007199254740991 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                  'message', 'the order total exceeds 9007199254740991 (2^53 - 1)');
    END IF;
    IF NOT customer_found THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'customer', 'id', p_customer_id);
    END IF;

    -- The chain's head, read after the customer lock: one index probe for
    -- the balance, the lifetime purchases and the time of the last entry.
    SELECT c.seq, c.balance_after AS balance, c.purchases_to_date, c.created_at AS created INTO head
      FROM credit_ledger c
     WHERE c.business_id = tenant AND c.customer_id = p_customer_id
     ORDER BY c.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        SELECT 0::bigint AS seq, 0::bigint AS balance, 0::bigint AS purchases_to_date,
               '-infinity'::timestamptz AS created INTO head;
    END IF;
    IF missing_product IS NOT NULL THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'product', 'id', missing_product);
    END IF;
    IF customer.status <> 'active' THEN
        RETURN ontab_account_refusal(p_customer_id, customer.status, true);
    END IF;
    IF short_product IS NOT NULL THEN
        RETURN jsonb_build_object('error', 'insufficient_stock', 'product_id', short_product,
                                  'requested', short_requested, 'available', short_available);
    END IF;
    IF head.balance + customer.held + order_total > customer.credit_limit THEN
        RETURN jsonb_build_object('error', 'credit_limit_exceeded', 'credit_limit', customer.credit_limit,
                                  'balance', head.balance, 'held', customer.held,
                                  'order_total', order_total::bigint);
    END IF;
    -- A limit of representation rather than of the request: checked last,
    -- so a refusal the client can act on is reported first.
    IF head.purchases_to_date::numeric + order_total > 9223372036854775807 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                  'message', 'the customer''s lifetime purchases would exceed the largest representable amount');
    END IF;

    created := greatest(now(), head.created);
    due := created + make_interval(days => customer.payment_terms_days);
    INSERT INTO orders (business_id, id, customer_id, total, created_at, due_at)
    VALUES (tenant, p_order_id, p_customer_id, order_total, created, due);

    WITH written AS (
        INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total)
        SELECT tenant, p_order_id, l.ord, l.product_id, l.quantity, p.price, p.price * l.quantity
          FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          CROSS JOIN LATERAL (SELECT pr.price FROM products pr
                               WHERE pr.business_id = tenant AND pr.id = l.product_id LIMIT 1) p
        RETURNING line_no, product_id, quantity, unit_price, line_total
    )
    SELECT jsonb_agg(jsonb_build_object('product_id', product_id, 'quantity', quantity,
                                        'unit_price', unit_price, 'line_total', line_total)
                     ORDER BY line_no)
      INTO items
      FROM written;

    FOR line IN SELECT * FROM unnest(p_product_ids, p_quantities) AS l (product_id, quantity) LOOP
        UPDATE products SET stock = stock - line.quantity
         WHERE business_id = tenant AND id = line.product_id;
    END LOOP;

    INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, order_id,
                               created_at, due_at)
    VALUES (tenant, p_entry_id, p_customer_id, head.seq + 1, 'purchase', order_total,
            head.balance + order_total, p_order_id, created, due);

    -- The order's checks now, as the batch runs them, rather than at
    -- COMMIT: there they would run as the server's role with its
    -- search_path, and a connection alternating with batches would plan
    -- them again at every switch (see the header). A line written later in
    -- this transaction is still checked at COMMIT, by its own trigger.
    SET CONSTRAINTS orders_complete, order_items_complete IMMEDIATE;
    SET CONSTRAINTS orders_complete, order_items_complete DEFERRED;

    RETURN jsonb_build_object('order', jsonb_build_object(
        'id', p_order_id, 'customer_id', p_customer_id, 'total', order_total::bigint,
        'created_at', created, 'due_at', due, 'hold_id', NULL, 'items', items));
END
$$;

ALTER FUNCTION public.ontab_purchase(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[]) OWNER TO ontab_writer;

--
-- Name: ontab_purchase_batch(uuid[], uuid[], uuid[], integer[], uuid[], bigint[]); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_purchase_batch(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[]) RETURNS jsonb[]
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    SET random_page_cost TO '1.1'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    -- On Citus (pg_dist_partition exists) the rows go in one INSERT each:
    -- an INSERT ... SELECT from arrays is run there as COPY, which row level
    -- security refuses. Elsewhere, one INSERT ... SELECT per table.
    row_by_row boolean := to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
    created timestamptz := now();
    n_orders int := coalesce(cardinality(p_order_ids), 0);
    n_lines int := coalesce(cardinality(p_product_ids), 0);
    -- A total a JSON client reads exactly; the bigint range, which lifetime
    -- purchases (internal, never sent) must fit.
    max_safe constant numeric := 9007199254740991::numeric;
    max_amount constant numeric := 9223372036854775807::numeric;

    -- The batch's customers (by id) with their limits and chain heads, and
    -- its products (by id) with price and stock: the state each order is
    -- decided against, updated in memory as orders are accepted.
    c_ids uuid[];
    c_limit bigint[];
    c_held bigint[];
    c_status text[];
    c_terms int[];
    c_seq bigint[];
    c_balance bigint[];
    c_purchased bigint[];
    p_ids uuid[];
    p_price bigint[];
    p_stock bigint[];
    p_sold bigint[];
    -- The chain heads as read, for a second attempt.
    head_seq bigint[];
    head_balance bigint[];
    head_purchased bigint[];
    -- Products as found once locked, to compare with what was decided on.
    l_ids uuid[];
    l_price bigint[];
    l_stock bigint[];
    stock_refused boolean;
    updated bigint;
    -- The row versions of p_ids, read under their locks, for the UPDATE.
    u_tids tid[];

    -- What the accepted orders write, and the answers (set afresh by each
    -- attempt).
    o_ids uuid[];
    o_customers uuid[];
    o_totals bigint[];
    o_dues timestamptz[];
    i_orders uuid[];
    i_line_nos int[];
    i_products uuid[];
    i_quantities bigint[];
    i_prices bigint[];
    e_ids uuid[];
    e_customers uuid[];
    e_seqs bigint[];
    e_amounts bigint[];
    e_balances bigint[];

    answers jsonb[];
    answer jsonb;
    items jsonb;
    ci int;
    k int;
    next_line int := 1;
    first_line int;
    last_line int;
    order_total numeric;
    missing_product uuid;
    short_product uuid;
    short_requested bigint;
    short_available bigint;
BEGIN
    IF coalesce(cardinality(p_entry_ids), 0) <> n_orders OR coalesce(cardinality(p_customer_ids), 0) <> n_orders
       OR coalesce(cardinality(p_line_orders), 0) <> n_lines OR coalesce(cardinality(p_quantities), 0) <> n_lines THEN
        RAISE EXCEPTION 'ontab_purchase_batch: argument arrays of unequal length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT coalesce(array_agg(id ORDER BY id), '{}'), coalesce(array_agg(credit_limit ORDER BY id), '{}'),
           coalesce(array_agg(status ORDER BY id), '{}'), coalesce(array_agg(payment_terms_days ORDER BY id), '{}')
      INTO c_ids, c_limit, c_status, c_terms
      FROM (SELECT c.id, c.credit_limit, c.status, c.payment_terms_days
              FROM (SELECT DISTINCT k.id FROM unnest(p_customer_ids) AS k (id) ORDER BY k.id) k
             CROSS JOIN LATERAL (SELECT c.id, c.credit_limit, c.status, c.payment_terms_days
                                   FROM customers c
                                  WHERE c.business_id = tenant AND c.id = k.id
                                    FOR UPDATE) c) locked;
    -- What live holds reserve of each customer's credit, read under its
    -- lock (no hold of theirs can start meanwhile), expired ones released.
    PERFORM ontab_release_expired_credit(tenant, c_ids);
    SELECT coalesce(array_agg(c.held ORDER BY k.ord), '{}')
      INTO c_held
      FROM unnest(c_ids) WITH ORDINALITY AS k (id, ord)
      JOIN LATERAL (SELECT c.held FROM customers c
                     WHERE c.business_id = tenant AND c.id = k.id
                     LIMIT 1) c ON true;
    -- Chain heads, read after the customer locks (a fresh snapshot): one
    -- index probe per customer, however long its history. The batch is
    -- dated no earlier than any of its customers' last entries, so every
    -- chain stays in time order.
    SELECT coalesce(array_agg(coalesce(h.seq, 0) ORDER BY c.ord), '{}'),
           coalesce(array_agg(coalesce(h.balance_after, 0) ORDER BY c.ord), '{}'),
           coalesce(array_agg(coalesce(h.purchases_to_date, 0) ORDER BY c.ord), '{}'),
           greatest(created, max(h.created_at))
      INTO head_seq, head_balance, head_purchased, created
      FROM unnest(c_ids) WITH ORDINALITY AS c (id, ord)
      LEFT JOIN LATERAL (SELECT l.seq, l.balance_after, l.purchases_to_date, l.created_at FROM credit_ledger l
                          WHERE l.business_id = tenant AND l.customer_id = c.id
                          ORDER BY l.seq DESC
                          LIMIT 1) h ON true;

    FOR attempt IN 1..2 LOOP
        BEGIN
            -- p_stock holds what each product has to sell: its stock beyond
            -- what live holds reserve.
            IF attempt = 1 THEN
                -- KEY SHARE, in id order: the lock the order lines' foreign
                -- keys take anyway (and would otherwise take in line order,
                -- which could deadlock with a return or a lone purchase
                -- locking the same products in id order). It does not
                -- conflict with another batch's NO KEY UPDATE below. Expired
                -- reservations are only counted out here (releasing them
                -- would lock the products): the locked check releases them.
                SELECT coalesce(array_agg(id ORDER BY id), '{}'), coalesce(array_agg(price ORDER BY id), '{}'),
                       coalesce(array_agg(available ORDER BY id), '{}')
                  INTO p_ids, p_price, p_stock
                  FROM (SELECT p.id, p.price,
                               p.stock - p.reserved
                                 + coalesce((SELECT sum(i.quantity) FROM pending_hold_items i
                                              WHERE i.business_id = tenant AND i.product_id = p.id
                                                AND i.expires_at <= now()), 0)::bigint AS available
                          FROM (SELECT DISTINCT k.id FROM unnest(p_product_ids) AS k (id) ORDER BY k.id) k
                         CROSS JOIN LATERAL (SELECT p.id, p.price, p.stock, p.reserved
                                               FROM products p
                                              WHERE p.business_id = tenant AND p.id = k.id
                                                FOR KEY SHARE) p) shared;
            ELSE
                PERFORM 1
                   FROM (SELECT DISTINCT k.id FROM unnest(p_product_ids) AS k (id) ORDER BY k.id) k
                  CROSS JOIN LATERAL (SELECT p.id FROM products p
                                       WHERE p.business_id = tenant AND p.id = k.id
                                         FOR NO KEY UPDATE) locked;
                PERFORM ontab_release_expired(tenant, p_product_ids);
                SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}'), coalesce(array_agg(p.price ORDER BY p.id), '{}'),
                       coalesce(array_agg(p.stock - p.reserved ORDER BY p.id), '{}'),
                       coalesce(array_agg(p.tid ORDER BY p.id), '{}')
                  INTO p_ids, p_price, p_stock, u_tids
                  FROM (SELECT DISTINCT k.id FROM unnest(p_product_ids) AS k (id)) k
                 CROSS JOIN LATERAL (SELECT p.id, p.price, p.stock, p.reserved, p.ctid AS tid
                                       FROM products p
                                      WHERE p.business_id = tenant AND p.id = k.id
                                      LIMIT 1) p;
            END IF;
            p_sold := array_fill(0::bigint, ARRAY[cardinality(p_ids)]);
            c_seq := head_seq;
            c_balance := head_balance;
            c_purchased := head_purchased;
            o_ids := '{}'; o_customers := '{}'; o_totals := '{}'; o_dues := '{}';
            i_orders := '{}'; i_line_nos := '{}'; i_products := '{}'; i_quantities := '{}'; i_prices := '{}';
            e_ids := '{}'; e_customers := '{}'; e_seqs := '{}'; e_amounts := '{}'; e_balances := '{}';
            answers := '{}';
            next_line := 1;
            stock_refused := false;

            FOR i IN 1..n_orders LOOP
                order_total := 0;
                missing_product := NULL;
                short_product := NULL;
                first_line := next_line;
                WHILE next_line <= n_lines AND p_line_orders[next_line] = i LOOP
                    k := array_position(p_ids, p_product_ids[next_line]);
                    IF k IS NULL THEN
                        missing_product := coalesce(missing_product, p_product_ids[next_line]);
                    ELSE
                        IF short_product IS NULL AND p_stock[k] < p_quantities[next_line] THEN
                            short_product := p_product_ids[next_line];
                            short_requested := p_quantities[next_line];
                            short_available := p_stock[k];
                        END IF;
                        order_total := order_total + p_price[k]::numeric * p_quantities[next_line];
                    END IF;
                    next_line := next_line + 1;
                END LOOP;
                last_line := next_line - 1;
                IF last_line < first_line THEN
                    RAISE EXCEPTION 'ontab_purchase_batch: order % has no lines', i
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                ci := array_position(c_ids, p_customer_ids[i]);

                -- The refusal order of ontab_purchase.
                IF order_total > max_safe THEN
                    answer := jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                                 'message', 'the order total exceeds 9007199254740991 (2^53 - 1)');
                ELSIF ci IS NULL THEN
                    answer := jsonb_build_object('error', 'not_found', 'resource', 'customer', 'id', p_customer_ids[i]);
                ELSIF missing_product IS NOT NULL THEN
                    answer := jsonb_build_object('error', 'not_found', 'resource', 'product', 'id', missing_product);
                ELSIF c_status[ci] <> 'active' THEN
                    answer := ontab_account_refusal(p_customer_ids[i], c_status[ci], true);
                ELSIF short_product IS NOT NULL THEN
                    answer := jsonb_build_object('error', 'insufficient_stock', 'product_id', short_product,
                                                 'requested', short_requested, 'available', short_available);
                    stock_refused := true;
                ELSIF c_balance[ci] + c_held[ci] + order_total > c_limit[ci] THEN
                    answer := jsonb_build_object('error', 'credit_limit_exceeded', 'credit_limit', c_limit[ci],
                                                 'balance', c_balance[ci], 'held', c_held[ci],
                                                 'order_total', order_total::bigint);
                ELSIF c_purchased[ci]::numeric + order_total > max_amount THEN
                    answer := jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                                 'message', 'the customer''s lifetime purchases would exceed the largest representable amount');
                ELSE
                    items := '[]';
                    FOR l IN first_line..last_line LOOP
                        k := array_position(p_ids, p_product_ids[l]);
                        p_stock[k] := p_stock[k] - p_quantities[l];
                        p_sold[k] := p_sold[k] + p_quantities[l];
                        i_orders := array_append(i_orders, p_order_ids[i]);
                        i_line_nos := array_append(i_line_nos, l - first_line + 1);
                        i_products := array_append(i_products, p_product_ids[l]);
                        i_quantities := array_append(i_quantities, p_quantities[l]);
                        i_prices := array_append(i_prices, p_price[k]);
                        items := items || jsonb_build_array(jsonb_build_object(
                            'product_id', p_product_ids[l], 'quantity', p_quantities[l],
                            'unit_price', p_price[k], 'line_total', p_price[k] * p_quantities[l]));
                    END LOOP;
                    c_seq[ci] := c_seq[ci] + 1;
                    -- Both within bigint: checked against the limit and max_amount above.
                    c_balance[ci] := (c_balance[ci] + order_total)::bigint;
                    c_purchased[ci] := (c_purchased[ci] + order_total)::bigint;
                    o_ids := array_append(o_ids, p_order_ids[i]);
                    o_customers := array_append(o_customers, p_customer_ids[i]);
                    o_totals := array_append(o_totals, order_total::bigint);
                    o_dues := array_append(o_dues, created + make_interval(days => c_terms[ci]));
                    e_ids := array_append(e_ids, p_entry_ids[i]);
                    e_customers := array_append(e_customers, p_customer_ids[i]);
                    e_seqs := array_append(e_seqs, c_seq[ci]);
                    e_amounts := array_append(e_amounts, order_total::bigint);
                    e_balances := array_append(e_balances, c_balance[ci]);
                    answer := jsonb_build_object('order', jsonb_build_object(
                        'id', p_order_ids[i], 'customer_id', p_customer_ids[i], 'total', order_total::bigint,
                        'created_at', created, 'due_at', o_dues[cardinality(o_dues)], 'hold_id', NULL,
                        'items', items));
                END IF;
                answers := array_append(answers, answer);
            END LOOP;

            IF next_line <= n_lines THEN
                RAISE EXCEPTION 'ontab_purchase_batch: line % belongs to no order in sequence', next_line
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            -- A refusal for stock states how much was available: only stock read
            -- under its lock may say that.
            IF attempt = 1 AND stock_refused THEN
                CONTINUE;
            END IF;
            -- Nothing to write: every answer stands as of the moment the products
            -- were read, the customers being locked since before.
            IF cardinality(o_ids) = 0 THEN
                RETURN answers;
            END IF;

            IF row_by_row THEN
                FOR k IN 1..cardinality(o_ids) LOOP
                    INSERT INTO orders (business_id, id, customer_id, total, created_at, due_at)
                    VALUES (tenant, o_ids[k], o_customers[k], o_totals[k], created, o_dues[k]);
                END LOOP;
                FOR k IN 1..cardinality(i_orders) LOOP
                    INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price,
                                             line_total)
                    VALUES (tenant, i_orders[k], i_line_nos[k], i_products[k], i_quantities[k], i_prices[k],
                            i_prices[k] * i_quantities[k]);
                END LOOP;
                FOR k IN 1..cardinality(e_ids) LOOP
                    INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after,
                                               order_id, created_at, due_at)
                    VALUES (tenant, e_ids[k], e_customers[k], e_seqs[k], 'purchase', e_amounts[k], e_balances[k],
                            o_ids[k], created, o_dues[k]);
                END LOOP;
            ELSE
                INSERT INTO orders (business_id, id, customer_id, total, created_at, due_at)
                SELECT tenant, o.id, o.customer_id, o.total, created, o.due_at
                  FROM unnest(o_ids, o_customers, o_totals, o_dues) AS o (id, customer_id, total, due_at);

                INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total)
                SELECT tenant, l.order_id, l.line_no, l.product_id, l.quantity, l.unit_price, l.unit_price * l.quantity
                  FROM unnest(i_orders, i_line_nos, i_products, i_quantities, i_prices)
                       AS l (order_id, line_no, product_id, quantity, unit_price);

                -- In arrival order: a customer's entries of this batch extend the chain
                -- one after another, each checked by the chain trigger against the one
                -- inserted before it.
                INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, order_id,
                                           created_at, due_at)
                SELECT tenant, e.id, e.customer_id, e.seq, 'purchase', e.amount, e.balance_after, e.order_id,
                       created, e.due_at
                  FROM unnest(e_ids, e_customers, e_seqs, e_amounts, e_balances, o_ids, o_dues)
                       WITH ORDINALITY AS e (id, customer_id, seq, amount, balance_after, order_id, due_at, ord)
                 ORDER BY e.ord;
            END IF;

            IF attempt = 1 THEN
                -- The orders' own checks now rather than at commit, which comes
                -- after the products are locked.
                SET CONSTRAINTS orders_complete, order_items_complete IMMEDIATE;
                SET CONSTRAINTS orders_complete, order_items_complete DEFERRED;
                -- The products, locked at last: the batch stands if nothing it was
                -- decided on has changed meanwhile (the same products, at the same
                -- prices, with stock beyond live holds for all it sold); otherwise
                -- all of it is undone and decided again under the locks. Expired
                -- reservations are released now that the products are locked.
                PERFORM 1
                   FROM (SELECT DISTINCT k.id FROM unnest(p_product_ids) AS k (id) ORDER BY k.id) k
                  CROSS JOIN LATERAL (SELECT p.id FROM products p
                                       WHERE p.business_id = tenant AND p.id = k.id
                                         FOR NO KEY UPDATE) locked;
                PERFORM ontab_release_expired(tenant, p_product_ids);
                SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}'), coalesce(array_agg(p.price ORDER BY p.id), '{}'),
                       coalesce(array_agg(p.stock - p.reserved ORDER BY p.id), '{}'),
                       coalesce(array_agg(p.tid ORDER BY p.id), '{}')
                  INTO l_ids, l_price, l_stock, u_tids
                  FROM (SELECT DISTINCT k.id FROM unnest(p_product_ids) AS k (id)) k
                 CROSS JOIN LATERAL (SELECT p.id, p.price, p.stock, p.reserved, p.ctid AS tid
                                       FROM products p
                                      WHERE p.business_id = tenant AND p.id = k.id
                                      LIMIT 1) p;
                IF l_ids IS DISTINCT FROM p_ids OR l_price IS DISTINCT FROM p_price THEN
                    RAISE EXCEPTION USING ERRCODE = 'OT001';
                END IF;
                FOR k IN 1..cardinality(p_ids) LOOP
                    IF l_stock[k] < p_sold[k] THEN
                        RAISE EXCEPTION USING ERRCODE = 'OT001';
                    END IF;
                END LOOP;
            END IF;

            IF row_by_row THEN
                FOR k IN 1..cardinality(p_ids) LOOP
                    IF p_sold[k] > 0 THEN
                        UPDATE products SET stock = stock - p_sold[k]
                         WHERE business_id = tenant AND id = p_ids[k];
                    END IF;
                END LOOP;
            ELSE
                -- One product per element of p_ids, all locked above, reached
                -- by the row version read under its lock (u_tids: nothing
                -- writes a product between that read and this UPDATE, and the
                -- lock keeps every other writer away), a TID scan per product.
                -- Joined to p_ids by id alone, as before, it was planned under
                -- a business's underestimate as a walk of every product of the
                -- business, each compared with every id. The id is compared
                -- too, and the count of rows written must be the count of
                -- products sold: a row version that were not the product's
                -- would fail the batch, never change another product.
                UPDATE products p SET stock = p.stock - s.sold
                  FROM unnest(p_ids, u_tids, p_sold) AS s (id, tid, sold)
                 WHERE p.ctid = s.tid AND p.id = s.id AND p.business_id = tenant AND s.sold > 0;
                GET DIAGNOSTICS updated = ROW_COUNT;
                IF updated <> cardinality(p_sold) - cardinality(array_positions(p_sold, 0::bigint)) THEN
                    RAISE EXCEPTION 'ontab_purchase_batch: % products updated for % sold', updated,
                        cardinality(p_sold) - cardinality(array_positions(p_sold, 0::bigint))
                        USING ERRCODE = 'internal_error';
                END IF;
            END IF;

            RETURN answers;

        EXCEPTION WHEN SQLSTATE 'OT001' THEN
            -- Decided on products that changed before they were locked: the
            -- writes of this attempt are rolled back with it; try again, locked.
            NULL;
        END;
    END LOOP;
    RAISE EXCEPTION 'ontab_purchase_batch: no attempt stood' USING ERRCODE = 'internal_error';
END
$$;

ALTER FUNCTION public.ontab_purchase_batch(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[]) OWNER TO ontab_writer;

--
-- Name: ontab_purchase_batch_for(uuid[], uuid[], uuid[], integer[], uuid[], bigint[], uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_purchase_batch_for(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[], p_business uuid) RETURNS jsonb[]
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_purchase_batch(p_order_ids, p_entry_ids, p_customer_ids, p_line_orders, p_product_ids, p_quantities);
END
$$;

ALTER FUNCTION public.ontab_purchase_batch_for(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[], p_business uuid) OWNER TO postgres;

--
-- Name: ontab_purchase_for(uuid, uuid, uuid, uuid[], bigint[], uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_purchase_for(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_purchase(p_order_id, p_entry_id, p_customer_id, p_product_ids, p_quantities);
END
$$;

ALTER FUNCTION public.ontab_purchase_for(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) OWNER TO postgres;

--
-- Name: ontab_record_customer_change(); Type: FUNCTION; Schema: public; Owner: ontab_recorder
--

CREATE FUNCTION public.ontab_record_customer_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    head_seq bigint;
BEGIN
    SELECT seq INTO head_seq
      FROM credit_ledger
     WHERE business_id = NEW.business_id AND customer_id = NEW.id
     ORDER BY seq DESC
     LIMIT 1;
    INSERT INTO customer_changes (business_id, customer_id, credit_limit, status, payment_terms_days,
                                  after_seq, changed_by)
    VALUES (NEW.business_id, NEW.id, NEW.credit_limit, NEW.status, NEW.payment_terms_days,
            coalesce(head_seq, 0),
            coalesce(nullif(current_setting('ontab.actor', true), ''), 'system'));
    RETURN NULL;
END
$$;

ALTER FUNCTION public.ontab_record_customer_change() OWNER TO ontab_recorder;

--
-- Name: ontab_record_overdue(integer); Type: FUNCTION; Schema: public; Owner: ontab_outbox
--

CREATE FUNCTION public.ontab_record_overdue(p_limit integer) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    emitted bigint := 0::bigint;
    d record;
    v_customer jsonb;
BEGIN
    FOR d IN
        SELECT l.customer_id, l.order_id, l.due_at,
               least(l.amount, l.purchases_to_date - h.credited) AS unsettled
          FROM customers c
         CROSS JOIN LATERAL (
               SELECT x.purchases_to_date - x.balance_after AS credited
                 FROM credit_ledger x
                WHERE x.business_id = tenant AND x.customer_id = c.id
                ORDER BY x.seq DESC LIMIT 1) h
          JOIN credit_ledger l
            ON l.business_id = tenant AND l.customer_id = c.id
           AND l.kind = 'purchase' AND l.amount > 0 AND l.purchases_to_date > h.credited
         WHERE c.business_id = tenant AND l.due_at <= now()
           AND NOT EXISTS (SELECT 1 FROM overdue_emitted o
                            WHERE o.business_id = tenant AND o.order_id = l.order_id)
         ORDER BY l.due_at, l.order_id
         LIMIT p_limit
    LOOP
        INSERT INTO overdue_emitted (business_id, order_id, customer_id)
        VALUES (tenant, d.order_id, d.customer_id)
        ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        v_customer := ontab_customer_json(tenant, d.customer_id);
        INSERT INTO events (business_id, id, type, subject_id, data)
        VALUES (tenant, ontab_uuid_v7(), 'customer.overdue', d.customer_id,
                v_customer || jsonb_build_object('overdue', jsonb_build_object(
                    'order_id', d.order_id, 'due_at', ontab_json_time(d.due_at),
                    'unsettled_amount', d.unsettled)));
        emitted := emitted + 1;
    END LOOP;
    RETURN emitted;
END
$$;

ALTER FUNCTION public.ontab_record_overdue(p_limit integer) OWNER TO ontab_outbox;

--
-- Name: ontab_record_overdue_for(integer, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_record_overdue_for(p_limit integer, p_business uuid) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_record_overdue(p_limit);
END
$$;

ALTER FUNCTION public.ontab_record_overdue_for(p_limit integer, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_refuse_history_change(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_refuse_history_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION '% is append-only history: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

ALTER FUNCTION public.ontab_refuse_history_change() OWNER TO postgres;

--
-- Name: ontab_refuse_unexplained_stock(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_refuse_unexplained_stock() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    RAISE EXCEPTION 'a new product''s stock % differs from its initial_stock %', NEW.stock, NEW.initial_stock
        USING ERRCODE = 'check_violation', CONSTRAINT = 'products_start_at_initial_stock';
END
$$;

ALTER FUNCTION public.ontab_refuse_unexplained_stock() OWNER TO postgres;

--
-- Name: ontab_release_expired(uuid, uuid[]); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_release_expired(p_business uuid, p_product_ids uuid[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM pending_hold_items
     WHERE business_id = p_business AND product_id = ANY (p_product_ids) AND expires_at <= now();
END
$$;

ALTER FUNCTION public.ontab_release_expired(p_business uuid, p_product_ids uuid[]) OWNER TO postgres;

--
-- Name: ontab_release_expired_credit(uuid, uuid[]); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_release_expired_credit(p_business uuid, p_customer_ids uuid[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM pending_holds
     WHERE business_id = p_business AND customer_id = ANY (p_customer_ids) AND expires_at <= now();
END
$$;

ALTER FUNCTION public.ontab_release_expired_credit(p_business uuid, p_customer_ids uuid[]) OWNER TO postgres;

--
-- Name: ontab_require_business(uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_require_business(p_business uuid) RETURNS void
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    IF p_business IS DISTINCT FROM ontab_require_tenant() THEN
        RAISE EXCEPTION 'the business % is not this transaction''s tenant', p_business
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

ALTER FUNCTION public.ontab_require_business(p_business uuid) OWNER TO postgres;

--
-- Name: ontab_require_tenant(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_require_tenant() RETURNS uuid
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    tenant uuid := ontab_tenant();
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant set for this transaction' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN tenant;
END
$$;

ALTER FUNCTION public.ontab_require_tenant() OWNER TO postgres;

--
-- Name: ontab_return(uuid, uuid, uuid, uuid[], bigint[]); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_return(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[]) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    buyer uuid;
    account_status text;
    head record;
    line record;
    locked uuid;
    return_amount numeric := 0::numeric;
    created timestamptz;
    items jsonb;
BEGIN
    SELECT customer_id INTO buyer FROM orders WHERE business_id = tenant AND id = p_order_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'order', 'id', p_order_id);
    END IF;

    -- The customer lock serializes this return with every other movement of
    -- the buyer's ledger, and with other returns of the same order. A
    -- closed customer's goods do not come back (its ledger is final); on
    -- hold, they do.
    SELECT status INTO account_status FROM customers WHERE business_id = tenant AND id = buyer FOR UPDATE;
    IF account_status = 'closed' THEN
        RETURN ontab_account_refusal(buyer, account_status, false);
    END IF;
    FOR locked IN SELECT DISTINCT x FROM unnest(p_product_ids) AS x ORDER BY 1 LOOP
        PERFORM 1 FROM products WHERE business_id = tenant AND id = locked FOR NO KEY UPDATE;
    END LOOP;

    FOR line IN
        SELECT l.product_id, l.quantity, oi.unit_price, pr.stock,
               coalesce(oi.quantity, 0) - coalesce(
                   (SELECT sum(ri.quantity) FROM return_items ri
                     WHERE ri.business_id = tenant AND ri.order_id = p_order_id
                       AND ri.product_id = l.product_id), 0) AS returnable
          FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          LEFT JOIN LATERAL (SELECT o.quantity, o.unit_price FROM order_items o
                              WHERE o.business_id = tenant AND o.order_id = p_order_id
                                AND o.product_id = l.product_id LIMIT 1) oi ON true
          LEFT JOIN LATERAL (SELECT p.stock FROM products p
                              WHERE p.business_id = tenant AND p.id = l.product_id LIMIT 1) pr ON true
         ORDER BY l.ord
    LOOP
        IF line.quantity > line.returnable THEN
            RETURN jsonb_build_object('error', 'return_exceeds_purchase', 'product_id', line.product_id,
                                      'returnable', line.returnable);
        END IF;
        -- Limits of representation rather than of the request: the stock
        -- and the balance stay within 2^53 - 1 either way.
        IF line.stock::numeric + line.quantity > 9007199254740991 THEN
            RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                      'message', format('the stock of product %s would exceed 9007199254740991 (2^53 - 1)',
                                                        line.product_id));
        END IF;
        return_amount := return_amount + line.unit_price::numeric * line.quantity;
    END LOOP;

    head := ontab_ledger_head(tenant, buyer);
    IF head.balance::numeric - return_amount < -9007199254740991 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                  'message', 'the customer''s credit would exceed 9007199254740991 (2^53 - 1)');
    END IF;
    created := greatest(now(), head.created);

    INSERT INTO returns (business_id, id, order_id, amount, created_at)
    VALUES (tenant, p_return_id, p_order_id, return_amount, created);

    WITH written AS (
        INSERT INTO return_items (business_id, return_id, order_id, line_no, product_id, quantity, unit_price, line_total)
        SELECT tenant, p_return_id, p_order_id, l.ord, l.product_id, l.quantity, oi.unit_price, oi.unit_price * l.quantity
          FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          CROSS JOIN LATERAL (SELECT o.unit_price FROM order_items o
                               WHERE o.business_id = tenant AND o.order_id = p_order_id
                                 AND o.product_id = l.product_id LIMIT 1) oi
        RETURNING line_no, product_id, quantity, unit_price, line_total
    )
    SELECT jsonb_agg(jsonb_build_object('product_id', product_id, 'quantity', quantity,
                                        'unit_price', unit_price, 'line_total', line_total)
                     ORDER BY line_no)
      INTO items
      FROM written;

    FOR line IN SELECT * FROM unnest(p_product_ids, p_quantities) AS l (product_id, quantity) LOOP
        UPDATE products SET stock = stock + line.quantity
         WHERE business_id = tenant AND id = line.product_id;
    END LOOP;

    INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after,
                               order_id, return_id, created_at)
    VALUES (tenant, p_entry_id, buyer, head.seq + 1, 'return', -return_amount,
            head.balance - return_amount, p_order_id, p_return_id, created);

    RETURN jsonb_build_object('return', jsonb_build_object(
        'id', p_return_id, 'order_id', p_order_id, 'customer_id', buyer,
        'amount', return_amount::bigint, 'items', items, 'created_at', created));
END
$$;

ALTER FUNCTION public.ontab_return(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[]) OWNER TO ontab_writer;

--
-- Name: ontab_return_for(uuid, uuid, uuid, uuid[], bigint[], uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_return_for(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_return(p_return_id, p_entry_id, p_order_id, p_product_ids, p_quantities);
END
$$;

ALTER FUNCTION public.ontab_return_for(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) OWNER TO postgres;

--
-- Name: ontab_return_json(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_return_json(p_business uuid, p_return uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
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

ALTER FUNCTION public.ontab_return_json(p_business uuid, p_return uuid) OWNER TO postgres;

--
-- Name: ontab_sequence_events(integer); Type: FUNCTION; Schema: public; Owner: ontab_sequencer
--

CREATE FUNCTION public.ontab_sequence_events(p_limit integer) RETURNS TABLE(event_type text, sequenced bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    last bigint;
    here_from bigint;
    here_to bigint;
    types text[];
    counts bigint[];
BEGIN
    INSERT INTO event_sequences (business_id) VALUES (tenant) ON CONFLICT DO NOTHING;
    SELECT s.last_sequence, (coalesce(s.last_position, 0) >> 48) << 48
      INTO last, here_from
      FROM event_sequences s WHERE s.business_id = tenant
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    here_to := here_from + (1::bigint << 48);
    -- This statement's snapshot is taken after the lock was won: it sees
    -- every earlier sequencer's numbers, and exactly the events committed
    -- by now. Each branch walks events_unsequenced in position order.
    WITH candidates AS (
        (SELECT e.id, e.position, false AS moved
           FROM events e
          WHERE e.business_id = tenant AND e.sequence IS NULL
            AND e.position >= here_from AND e.position < here_to
          ORDER BY e.position
          LIMIT p_limit)
        UNION ALL
        (SELECT e.id, e.position, true AS moved
           FROM events e
          WHERE e.business_id = tenant AND e.sequence IS NULL
            AND (e.position < here_from OR e.position >= here_to)
          ORDER BY e.position
          LIMIT p_limit)
    ), batch AS (
        SELECT c.id, c.position,
               last + row_number() OVER (ORDER BY c.moved, c.position) AS sequence
          FROM candidates c
         ORDER BY c.moved, c.position
         LIMIT p_limit
    ), numbered AS (
        UPDATE events e SET sequence = b.sequence
          FROM batch b
         WHERE e.business_id = tenant AND e.id = b.id
        RETURNING e.type, e.sequence, e.position
    ), bumped AS (
        UPDATE event_sequences s
           SET last_sequence = n.sequence, last_position = n.position
          FROM (SELECT n.sequence, n.position FROM numbered n
                 ORDER BY n.sequence DESC LIMIT 1) n
         WHERE s.business_id = tenant
    )
    SELECT array_agg(t.type), array_agg(t.n) INTO types, counts
      FROM (SELECT n.type, count(*) AS n FROM numbered n GROUP BY n.type) t;
    IF types IS NOT NULL THEN
        PERFORM pg_notify('ontab_events', tenant::text);
        RETURN QUERY SELECT u.t, u.n FROM unnest(types, counts) AS u (t, n);
    END IF;
END
$$;

ALTER FUNCTION public.ontab_sequence_events(p_limit integer) OWNER TO ontab_sequencer;

--
-- Name: ontab_sequence_events_for(integer, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_sequence_events_for(p_limit integer, p_business uuid) RETURNS TABLE(event_type text, sequenced bigint)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN QUERY SELECT s.event_type, s.sequenced FROM ontab_sequence_events(p_limit) s;
END
$$;

ALTER FUNCTION public.ontab_sequence_events_for(p_limit integer, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_tenant(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT nullif(current_setting('ontab.business_id', true), '')::uuid
$$;

ALTER FUNCTION public.ontab_tenant() OWNER TO postgres;

--
-- Name: ontab_unsequenced_businesses(integer); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_unsequenced_businesses(p_limit integer) RETURNS TABLE(business_id uuid, oldest timestamp with time zone)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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

ALTER FUNCTION public.ontab_unsequenced_businesses(p_limit integer) OWNER TO ontab_system;

--
-- Name: ontab_update_customer(uuid, text, bigint, text, integer); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_update_customer(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer) RETURNS jsonb
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    account_status text;
    head record;
    pending record;
BEGIN
    SELECT status INTO account_status FROM customers WHERE business_id = tenant AND id = p_customer_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'customer', 'id', p_customer_id);
    END IF;
    IF account_status = 'closed' AND p_status IS DISTINCT FROM 'closed' AND p_status IS NOT NULL THEN
        RETURN ontab_account_refusal(p_customer_id, account_status, false);
    END IF;
    IF p_status = 'closed' AND account_status <> 'closed' THEN
        head := ontab_ledger_head(tenant, p_customer_id);
        IF head.balance <> 0 THEN
            RETURN jsonb_build_object('error', 'balance_outstanding', 'balance', head.balance);
        END IF;
        -- Closing gives back what the customer's holds reserve: pending
        -- ones are voided, expired ones recorded as expired.
        FOR pending IN SELECT p.hold_id, p.expires_at FROM pending_holds p
                        WHERE p.business_id = tenant AND p.customer_id = p_customer_id
                        ORDER BY p.hold_id LOOP
            IF pending.expires_at <= now() THEN
                PERFORM ontab_expire_hold(pending.hold_id);
            ELSE
                PERFORM ontab_void(pending.hold_id);
            END IF;
        END LOOP;
    END IF;
    UPDATE customers
       SET name = coalesce(p_name, name),
           credit_limit = coalesce(p_credit_limit, credit_limit),
           status = coalesce(p_status, status),
           payment_terms_days = coalesce(p_payment_terms_days, payment_terms_days)
     WHERE business_id = tenant AND id = p_customer_id;
    -- The status it had, read under the lock: the caller counts real
    -- status changes (a metric) without a read of its own.
    RETURN jsonb_build_object('updated', true, 'status_was', account_status);
END
$$;

ALTER FUNCTION public.ontab_update_customer(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer) OWNER TO postgres;

--
-- Name: ontab_update_customer_for(uuid, text, bigint, text, integer, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_update_customer_for(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer, p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_update_customer(p_customer_id, p_name, p_credit_limit, p_status, p_payment_terms_days);
END
$$;

ALTER FUNCTION public.ontab_update_customer_for(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_uuid_v7(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_uuid_v7() RETURNS uuid
    LANGUAGE sql
    AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                                          PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                                          FROM 1 FOR 6),
                                  52, 1), 53, 1), 'hex')::uuid
$$;

ALTER FUNCTION public.ontab_uuid_v7() OWNER TO postgres;

--
-- Name: ontab_void(uuid); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_void(p_hold_id uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    hold record;
    refusal jsonb;
BEGIN
    hold := ontab_lock_hold(tenant, p_hold_id);
    IF hold.customer_id IS NULL THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'hold', 'id', p_hold_id);
    END IF;
    refusal := ontab_hold_refusal(tenant, p_hold_id, hold.expires_at);
    IF refusal IS NOT NULL THEN
        RETURN refusal;
    END IF;
    PERFORM ontab_end_hold(tenant, p_hold_id, 'voided', NULL);
    RETURN jsonb_build_object('hold', ontab_hold_view(tenant, p_hold_id));
END
$$;

ALTER FUNCTION public.ontab_void(p_hold_id uuid) OWNER TO ontab_writer;

--
-- Name: ontab_void_for(uuid, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_void_for(p_hold_id uuid, p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_void(p_hold_id);
END
$$;

ALTER FUNCTION public.ontab_void_for(p_hold_id uuid, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_webhook_attempted_batch(uuid, integer, bigint[], uuid[], integer[], text[], integer[], timestamp with time zone[], boolean[]); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_webhook_attempted_batch(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[]) RETURNS TABLE(delivery_id uuid, outcome text, next_delivery_id uuid)
    LANGUAGE plpgsql
    SET random_page_cost TO '1.1'
    AS $_$
#variable_conflict use_column
DECLARE
    -- The tenant and the time as values: Citus routes a statement to the
    -- business's shard only when it sees the business, and cannot put a
    -- STABLE call inside CASE. now() is the transaction's start either way.
    v_business uuid := ontab_tenant();
    v_now timestamptz := now();
    -- On Citus, one delivery at a time (0019): an INSERT ... SELECT there
    -- goes through the coordinator, which a delegated call may not reach.
    row_by_row boolean := to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
    d record;
    k int;
    v_outcome text;
    v_state text;
    v_next_at timestamptz;
    v_finished_at timestamptz;
    v_ids uuid[] := '{}'::uuid[];
    v_outcomes text[] := '{}'::text[];
    v_endpoints uuid[] := '{}'::uuid[];
    v_subjects uuid[] := '{}'::uuid[];
    v_continue boolean[] := '{}'::boolean[];
    v_gone uuid[] := '{}'::uuid[];
    v_live uuid[];
    v_done record;
    v_cand record;
    v_run uuid[];
    -- A subject's run leased at once: at most this many of its deliveries.
    c_run constant int := 20;
    v_leased_ids uuid[] := '{}'::uuid[];
    v_leased_endpoints uuid[] := '{}'::uuid[];
    v_leased_subjects uuid[] := '{}'::uuid[];
BEGIN
    IF NOT row_by_row THEN
        -- 0018's statement, planned with this call's values (EXECUTE):
        -- which index finds the batch depends on the table's size now.
        EXECUTE $sql$
        WITH input AS (
            SELECT DISTINCT ON (i.id) i.id, i.status, i.error, i.duration_ms, i.attempted_at, i.cont
              FROM unnest($4, $5, $6, $7, $8, $9)
                   AS i(id, status, error, duration_ms, attempted_at, cont)
             WHERE i.id IS NOT NULL
             ORDER BY i.id
        ), locked AS MATERIALIZED (
            SELECT d.business_id, d.id, d.endpoint_id, d.event_id, d.subject_id, d.attempts, d.tid
              FROM (SELECT i.id FROM input i ORDER BY i.id) k
             CROSS JOIN LATERAL (
                   SELECT d.business_id, d.id, d.endpoint_id, d.event_id, d.subject_id, d.attempts,
                          d.ctid AS tid
                     FROM webhook_deliveries d
                    WHERE d.business_id = $1 AND d.id = k.id
                      AND d.finished_at IS NULL AND d.lease = $2
                      FOR UPDATE) d
        ), timed AS MATERIALIZED (
            SELECT h.*,
                   CASE h.outcome
                        WHEN 'disabled' THEN $10
                        WHEN 'retrying' THEN $10 + make_interval(secs => $3[h.attempts + 1] / 1000.0)
                   END AS next_at
              FROM (SELECT l.business_id, l.id, l.endpoint_id, l.event_id, l.subject_id, l.attempts,
                           i.status, i.error, i.duration_ms, i.attempted_at,
                           coalesce(i.cont, false) AS cont,
                           CASE WHEN i.status BETWEEN 200 AND 299 THEN 'delivered'
                                WHEN i.status = 410 THEN 'disabled'
                                WHEN l.attempts + 1 <= coalesce(cardinality($3), 0) THEN 'retrying'
                                ELSE 'gave_up' END AS outcome
                      FROM locked l
                      JOIN input i ON i.id = l.id) h
        ), recorded AS (
            UPDATE webhook_deliveries d
               SET attempts = d.attempts + 1,
                   state = CASE t.outcome WHEN 'delivered' THEN 'delivered'
                                          WHEN 'gave_up' THEN 'failed'
                                          ELSE 'pending' END,
                   next_attempt_at = coalesce(t.next_at, d.next_attempt_at),
                   finished_at = CASE WHEN t.outcome IN ('delivered', 'gave_up') THEN $10 END,
                   lease = NULL,
                   leased_until = NULL
              FROM timed t
             WHERE d.business_id = $1 AND d.ctid = ANY (ARRAY(SELECT l.tid FROM locked l))
               AND d.id = t.id
        ), logged AS (
            INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id, attempt,
                                          status_code, error, duration_ms, outcome, next_attempt_at,
                                          attempted_at)
            SELECT t.business_id, gen_random_uuid(), t.endpoint_id, t.id, t.event_id, t.attempts + 1,
                   t.status, left(t.error, 1000), greatest(t.duration_ms, 0), t.outcome, t.next_at,
                   t.attempted_at
              FROM timed t
        ), gone AS (
            UPDATE webhook_endpoints e
               SET disabled = true, disabled_reason = 'gone', updated_at = $10
             WHERE e.business_id = $1
               AND e.id IN (SELECT t.endpoint_id FROM timed t WHERE t.outcome = 'disabled')
               AND NOT e.disabled
        )
        SELECT coalesce(array_agg(t.id), '{}'), coalesce(array_agg(t.outcome), '{}'),
               coalesce(array_agg(t.endpoint_id), '{}'), coalesce(array_agg(t.subject_id), '{}'),
               coalesce(array_agg(t.cont), '{}')
          FROM timed t
        $sql$
        INTO v_ids, v_outcomes, v_endpoints, v_subjects, v_continue
        USING v_business, p_lease, p_schedule, p_deliveries, p_status, p_error, p_duration_ms,
              p_attempted_at, p_continue, v_now;
    ELSE
        -- The deliveries still held under this lease, locked in id order (as
        -- every recorder locks them). Each is recorded by its own UPDATE and
        -- INSERT ... VALUES, the business named in each: Citus runs an
        -- INSERT ... SELECT by way of the coordinator, which a delegated call
        -- on a worker may not reach.
        FOR d IN
            SELECT w.id, w.endpoint_id, w.event_id, w.subject_id, w.attempts
              FROM webhook_deliveries w
             WHERE w.business_id = v_business AND w.id = ANY (p_deliveries)
               AND w.finished_at IS NULL AND w.lease = p_lease
             ORDER BY w.id
               FOR UPDATE
        LOOP
            -- A delivery named twice is recorded once, with its first attempt.
            k := array_position(p_deliveries, d.id);
            v_outcome := CASE WHEN p_status[k] BETWEEN 200 AND 299 THEN 'delivered'
                              WHEN p_status[k] = 410 THEN 'disabled'
                              WHEN d.attempts + 1 <= coalesce(cardinality(p_schedule), 0) THEN 'retrying'
                              ELSE 'gave_up' END;
            v_next_at := CASE v_outcome
                              WHEN 'disabled' THEN v_now
                              WHEN 'retrying' THEN v_now + make_interval(secs => p_schedule[d.attempts + 1] / 1000.0)
                         END;
            v_state := CASE v_outcome WHEN 'delivered' THEN 'delivered'
                                      WHEN 'gave_up' THEN 'failed'
                                      ELSE 'pending' END;
            v_finished_at := CASE WHEN v_outcome IN ('delivered', 'gave_up') THEN v_now END;
            -- Plain values in the statement: Citus deparses a simple CASE on a
            -- PL/pgSQL variable wrongly (0014).
            UPDATE webhook_deliveries w
               SET attempts = w.attempts + 1,
                   state = v_state,
                   next_attempt_at = coalesce(v_next_at, w.next_attempt_at),
                   finished_at = v_finished_at,
                   lease = NULL,
                   leased_until = NULL
             WHERE w.business_id = v_business AND w.id = d.id;
            INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id, attempt,
                                          status_code, error, duration_ms, outcome, next_attempt_at,
                                          attempted_at)
            VALUES (v_business, gen_random_uuid(), d.endpoint_id, d.id, d.event_id, d.attempts + 1,
                    p_status[k], left(p_error[k], 1000), greatest(p_duration_ms[k], 0), v_outcome,
                    v_next_at, p_attempted_at[k]);
            v_ids := v_ids || d.id;
            v_outcomes := v_outcomes || v_outcome;
            v_endpoints := v_endpoints || d.endpoint_id;
            v_subjects := v_subjects || d.subject_id;
            v_continue := v_continue || coalesce(p_continue[k], false);
            IF v_outcome = 'disabled' THEN
                v_gone := v_gone || d.endpoint_id;
            END IF;
        END LOOP;
        IF cardinality(v_gone) > 0 THEN
            UPDATE webhook_endpoints e
               SET disabled = true, disabled_reason = 'gone', updated_at = v_now
             WHERE e.business_id = v_business AND e.id = ANY (v_gone) AND NOT e.disabled;
        END IF;
    END IF;

    IF cardinality(v_ids) = 0 THEN
        RETURN;
    END IF;

    -- Each delivered subject's next run (0024): its first pending
    -- deliveries in sequence order (one probe of the pending index, its
    -- exact prefix and order), locked, and taken from the head for as
    -- long as each is due and free: unleased, its lease expired, or
    -- already this server's (the rest of a run its task cut short).
    -- Locked first, so what is taken is a prefix of the subject's queue
    -- whatever commits meanwhile. Leased by one statement for every
    -- subject, planned with its values (EXECUTE, as above).
    SELECT coalesce(array_agg(e.id), '{}'::uuid[]) INTO v_live
      FROM webhook_endpoints e
     WHERE e.business_id = v_business AND e.id = ANY (v_endpoints) AND NOT e.disabled;
    IF NOT row_by_row THEN
        -- 0025: every subject's probe in one statement, a LATERAL per
        -- subject in (endpoint, subject) order as the loop below locks
        -- them. As a loop, each subject cost a statement of its own
        -- (37 µs per delivery recorded, most of them finding nothing
        -- pending, in the uncontended benchmark with one endpoint).
        EXECUTE $sql$
        WITH done AS MATERIALIZED (
            SELECT DISTINCT r.endpoint_id, r.subject_id
              FROM unnest($2::text[], $3::uuid[], $4::uuid[], $5::boolean[])
                   AS r(outcome, endpoint_id, subject_id, cont)
             WHERE r.outcome = 'delivered' AND r.cont AND r.endpoint_id = ANY ($6)
             ORDER BY r.endpoint_id, r.subject_id
        ), queued AS MATERIALIZED (
            SELECT q.id, q.endpoint_id, q.subject_id, q.sequence, q.free
              FROM done s
             CROSS JOIN LATERAL (
                   SELECT n.id, n.endpoint_id, n.subject_id, n.sequence,
                          (n.next_attempt_at <= $7
                           AND (n.leased_until IS NULL OR n.leased_until <= $7 OR n.lease = $8)) AS free
                     FROM webhook_deliveries n
                    WHERE n.business_id = $1 AND n.endpoint_id = s.endpoint_id
                      AND n.subject_id = s.subject_id AND n.state = 'pending'
                    ORDER BY n.sequence, n.id
                    LIMIT $9
                      FOR UPDATE) q
        ), taken AS (
            SELECT q.id, q.endpoint_id, q.subject_id,
                   bool_and(q.free) OVER (PARTITION BY q.endpoint_id, q.subject_id
                                          ORDER BY q.sequence, q.id) AS prefix
              FROM queued q
        )
        SELECT coalesce(array_agg(t.id), '{}'::uuid[]),
               coalesce(array_agg(t.endpoint_id), '{}'::uuid[]),
               coalesce(array_agg(t.subject_id), '{}'::uuid[])
          FROM taken t
         WHERE t.prefix
        $sql$
        INTO v_leased_ids, v_leased_endpoints, v_leased_subjects
        USING v_business, v_outcomes, v_endpoints, v_subjects, v_continue, v_live, v_now, p_lease,
              c_run;
    ELSE
        -- On Citus, one subject at a time, as 0024 did everywhere.
        FOR v_done IN
            SELECT DISTINCT r.endpoint_id, r.subject_id
              FROM unnest(v_outcomes, v_endpoints, v_subjects, v_continue)
                   AS r(outcome, endpoint_id, subject_id, cont)
             WHERE r.outcome = 'delivered' AND r.cont AND r.endpoint_id = ANY (v_live)
             ORDER BY r.endpoint_id, r.subject_id
        LOOP
            v_run := '{}'::uuid[];
            FOR v_cand IN
                SELECT n.id, n.next_attempt_at, n.lease, n.leased_until
                  FROM webhook_deliveries n
                 WHERE n.business_id = v_business AND n.endpoint_id = v_done.endpoint_id
                   AND n.subject_id = v_done.subject_id AND n.state = 'pending'
                 ORDER BY n.sequence, n.id
                 LIMIT c_run
                   FOR UPDATE
            LOOP
                EXIT WHEN v_cand.next_attempt_at > v_now
                       OR NOT (v_cand.leased_until IS NULL OR v_cand.leased_until <= v_now
                               OR v_cand.lease = p_lease);
                v_run := v_run || v_cand.id;
            END LOOP;
            CONTINUE WHEN cardinality(v_run) = 0;
            v_leased_ids := v_leased_ids || v_run;
            v_leased_endpoints := v_leased_endpoints || array_fill(v_done.endpoint_id, ARRAY[cardinality(v_run)]);
            v_leased_subjects := v_leased_subjects || array_fill(v_done.subject_id, ARRAY[cardinality(v_run)]);
        END LOOP;
    END IF;
    IF cardinality(v_leased_ids) > 0 THEN
        EXECUTE
            'UPDATE webhook_deliveries w
                SET lease = $2, leased_until = $3 + make_interval(secs => $4 / 1000.0)
              WHERE w.business_id = $1 AND w.id = ANY ($5)'
            USING v_business, p_lease, v_now, p_lease_ms, v_leased_ids;
    END IF;

    RETURN QUERY
    SELECT r.id, r.outcome, l.id
      FROM unnest(v_ids, v_outcomes, v_endpoints, v_subjects, v_continue)
           AS r(id, outcome, endpoint_id, subject_id, cont)
      LEFT JOIN unnest(v_leased_ids, v_leased_endpoints, v_leased_subjects)
           AS l(id, endpoint_id, subject_id)
        ON r.outcome = 'delivered' AND r.cont
       AND l.endpoint_id = r.endpoint_id AND l.subject_id = r.subject_id;
END
$_$;

ALTER FUNCTION public.ontab_webhook_attempted_batch(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[]) OWNER TO postgres;

--
-- Name: ontab_webhook_attempted_batch_for(uuid, integer, bigint[], uuid[], integer[], text[], integer[], timestamp with time zone[], boolean[], uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_webhook_attempted_batch_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[], p_business uuid) RETURNS TABLE(delivery_id uuid, outcome text, next_delivery_id uuid)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN QUERY
    SELECT a.delivery_id, a.outcome, a.next_delivery_id
      FROM ontab_webhook_attempted_batch(p_lease, p_lease_ms, p_schedule, p_deliveries, p_status,
                                         p_error, p_duration_ms, p_attempted_at, p_continue) a;
END
$$;

ALTER FUNCTION public.ontab_webhook_attempted_batch_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[], p_business uuid) OWNER TO postgres;

--
-- Name: ontab_webhook_attempted_window(uuid, integer, bigint[], uuid[], bigint[], uuid[], uuid[], uuid[], uuid[], integer[], text[], integer[], timestamp with time zone[], uuid[], uuid[], uuid[], uuid[], boolean); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_webhook_attempted_window(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean) RETURNS TABLE(kind text, endpoint_id uuid, id uuid, outcome text)
    LANGUAGE plpgsql
    SET random_page_cost TO '1.1'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
#variable_conflict use_column
DECLARE
    v_business uuid := ontab_tenant();
    v_now timestamptz := now();
    v_until timestamptz := now() + make_interval(secs => p_lease_ms / 1000.0);
    -- On Citus, one row at a time (0019).
    row_by_row boolean := to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
    v_owned uuid[] := '{}'::uuid[];
    v_settle record;
    a record;
    v_outcome text;
    v_next_at timestamptz;
    v_gone uuid[] := '{}'::uuid[];
BEGIN
    -- The windows still this server's, read without a lock: the lock on
    -- an endpoint row (which the fan-out waits for) is taken last, by the
    -- UPDATE that moves its cursor, and held only until COMMIT.
    SELECT coalesce(array_agg(e.id), '{}'::uuid[]) INTO v_owned
      FROM webhook_endpoints e
     WHERE e.business_id = v_business AND e.id = ANY (p_settle_endpoints)
       AND e.window_lease = p_lease;
    FOR v_settle IN
        SELECT DISTINCT s.endpoint_id
          FROM unnest(p_settle_endpoints) AS s(endpoint_id)
         WHERE NOT s.endpoint_id = ANY (v_owned)
    LOOP
        kind := 'lost';
        endpoint_id := v_settle.endpoint_id;
        id := NULL;
        outcome := NULL;
        RETURN NEXT;
    END LOOP;

    -- What was delivered: its attempt, and nothing else. Written again
    -- (p_rewrite) after an error, what the first write did commit is
    -- skipped; the first write pays no conflict check. Static statements
    -- (they read no table): planned once per session.
    IF NOT row_by_row AND NOT p_rewrite THEN
        INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id, attempt,
                                      status_code, error, duration_ms, outcome, next_attempt_at,
                                      attempted_at)
        SELECT v_business, i.attempt_id, i.endpoint_id, NULL, i.event_id, 1, i.status,
               left(i.error, 1000), greatest(i.duration_ms, 0), 'delivered', NULL, i.attempted_at
          FROM unnest(p_endpoints, p_events, p_attempt_ids, p_status, p_error, p_duration_ms,
                      p_attempted_at)
               AS i(endpoint_id, event_id, attempt_id, status, error, duration_ms, attempted_at)
         WHERE i.status BETWEEN 200 AND 299 AND i.endpoint_id = ANY (v_owned);
    ELSIF NOT row_by_row THEN
        INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id, attempt,
                                      status_code, error, duration_ms, outcome, next_attempt_at,
                                      attempted_at)
        SELECT v_business, i.attempt_id, i.endpoint_id, NULL, i.event_id, 1, i.status,
               left(i.error, 1000), greatest(i.duration_ms, 0), 'delivered', NULL, i.attempted_at
          FROM unnest(p_endpoints, p_events, p_attempt_ids, p_status, p_error, p_duration_ms,
                      p_attempted_at)
               AS i(endpoint_id, event_id, attempt_id, status, error, duration_ms, attempted_at)
         WHERE i.status BETWEEN 200 AND 299 AND i.endpoint_id = ANY (v_owned)
        ON CONFLICT DO NOTHING;
    END IF;
    -- The others one at a time (they are few), and on Citus all. Only
    -- these are answered: the caller knows a 2xx of a window it still
    -- holds was delivered.
    FOR a IN
        SELECT i.endpoint_id, i.event_id, i.row_id, i.attempt_id, i.status, i.error, i.duration_ms,
               i.attempted_at
          FROM unnest(p_endpoints, p_events, p_row_ids, p_attempt_ids, p_status, p_error,
                      p_duration_ms, p_attempted_at)
               AS i(endpoint_id, event_id, row_id, attempt_id, status, error, duration_ms, attempted_at)
         WHERE row_by_row OR NOT coalesce(i.status BETWEEN 200 AND 299, false)
    LOOP
        kind := 'attempt';
        endpoint_id := a.endpoint_id;
        id := a.event_id;
        IF NOT a.endpoint_id = ANY (v_owned) THEN
            outcome := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        v_outcome := CASE WHEN a.status BETWEEN 200 AND 299 THEN 'delivered'
                          WHEN a.status = 410 THEN 'disabled'
                          WHEN coalesce(cardinality(p_schedule), 0) >= 1 THEN 'retrying'
                          ELSE 'gave_up' END;
        IF v_outcome = 'delivered' THEN
            IF row_by_row THEN
                INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id,
                                              attempt, status_code, error, duration_ms, outcome,
                                              next_attempt_at, attempted_at)
                VALUES (v_business, a.attempt_id, a.endpoint_id, NULL, a.event_id, 1, a.status,
                        left(a.error, 1000), greatest(a.duration_ms, 0), 'delivered', NULL,
                        a.attempted_at)
                ON CONFLICT DO NOTHING;
            END IF;
        ELSE
            v_next_at := CASE v_outcome
                              WHEN 'disabled' THEN v_now
                              WHEN 'retrying' THEN v_now + make_interval(secs => p_schedule[1] / 1000.0)
                              ELSE v_now
                         END;
            -- The event's row, as if the row recorder had recorded this
            -- first attempt (plain values: Citus, 0014).
            INSERT INTO webhook_deliveries (business_id, id, endpoint_id, event_id, sequence,
                                            subject_id, state, attempts, next_attempt_at,
                                            finished_at)
            SELECT ev.business_id, a.row_id, a.endpoint_id, ev.id, ev.sequence,
                   coalesce(ev.subject_id, ev.business_id),
                   CASE WHEN v_outcome = 'gave_up' THEN 'failed' ELSE 'pending' END, 1, v_next_at,
                   CASE WHEN v_outcome = 'gave_up' THEN v_now END
              FROM events ev
             WHERE ev.business_id = v_business AND ev.id = a.event_id
            ON CONFLICT DO NOTHING;
            IF FOUND THEN
                INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id,
                                              attempt, status_code, error, duration_ms, outcome,
                                              next_attempt_at, attempted_at)
                VALUES (v_business, a.attempt_id, a.endpoint_id, a.row_id, a.event_id, 1, a.status,
                        left(a.error, 1000), greatest(a.duration_ms, 0), v_outcome,
                        CASE WHEN v_outcome IN ('retrying', 'disabled') THEN v_next_at END,
                        a.attempted_at)
                ON CONFLICT DO NOTHING;
            END IF;
            IF v_outcome = 'disabled' THEN
                v_gone := v_gone || a.endpoint_id;
            END IF;
        END IF;
        outcome := v_outcome;
        RETURN NEXT;
    END LOOP;
    IF cardinality(v_gone) > 0 THEN
        UPDATE webhook_endpoints e
           SET disabled = true, disabled_reason = 'gone', updated_at = v_now
         WHERE e.business_id = v_business AND e.id = ANY (v_gone) AND NOT e.disabled;
    END IF;

    -- Events handed out and not sent: pending rows, behind their subject's.
    FOR a IN
        SELECT s.endpoint_id, s.event_id, s.row_id
          FROM unnest(p_spill_endpoints, p_spill_events, p_spill_ids) AS s(endpoint_id, event_id, row_id)
         WHERE s.endpoint_id = ANY (v_owned)
    LOOP
        INSERT INTO webhook_deliveries (business_id, id, endpoint_id, event_id, sequence, subject_id)
        SELECT ev.business_id, a.row_id, a.endpoint_id, ev.id, ev.sequence,
               coalesce(ev.subject_id, ev.business_id)
          FROM events ev
         WHERE ev.business_id = v_business AND ev.id = a.event_id
        ON CONFLICT DO NOTHING;
    END LOOP;

    IF coalesce(cardinality(p_release_ids), 0) > 0 THEN
        UPDATE webhook_deliveries w
           SET lease = NULL, leased_until = NULL
         WHERE w.business_id = v_business AND w.id = ANY (p_release_ids)
           AND w.state = 'pending' AND w.lease = p_lease;
    END IF;

    -- Renewed, and moved on, in id order. A window lost since the read
    -- above (its lease expired and another server took it) undoes this
    -- recording, so that nothing is written for it: written again, it
    -- is lost from the start.
    FOR v_settle IN
        SELECT s.endpoint_id, max(s.through) AS through
          FROM unnest(p_settle_endpoints, p_settle_through) AS s(endpoint_id, through)
         WHERE s.endpoint_id = ANY (v_owned)
         GROUP BY s.endpoint_id
         ORDER BY s.endpoint_id
    LOOP
        UPDATE webhook_endpoints e
           SET settled_through = greatest(e.settled_through,
                                          least(v_settle.through, e.fanned_out_through)),
               window_leased_until = v_until
         WHERE e.business_id = v_business AND e.id = v_settle.endpoint_id
           AND e.window_lease = p_lease;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the window of webhook endpoint % was taken over meanwhile',
                v_settle.endpoint_id
                USING ERRCODE = '40001';
        END IF;
    END LOOP;
END
$$;

ALTER FUNCTION public.ontab_webhook_attempted_window(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean) OWNER TO postgres;

--
-- Name: ontab_webhook_attempted_window_for(uuid, integer, bigint[], uuid[], bigint[], uuid[], uuid[], uuid[], uuid[], integer[], text[], integer[], timestamp with time zone[], uuid[], uuid[], uuid[], uuid[], boolean, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_webhook_attempted_window_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean, p_business uuid) RETURNS TABLE(kind text, endpoint_id uuid, id uuid, outcome text)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN QUERY
    SELECT w.kind, w.endpoint_id, w.id, w.outcome
      FROM ontab_webhook_attempted_window(p_lease, p_lease_ms, p_schedule, p_settle_endpoints,
                                          p_settle_through, p_endpoints, p_events, p_row_ids,
                                          p_attempt_ids, p_status, p_error, p_duration_ms,
                                          p_attempted_at, p_spill_endpoints, p_spill_events,
                                          p_spill_ids, p_release_ids, p_rewrite) w;
END
$$;

ALTER FUNCTION public.ontab_webhook_attempted_window_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean, p_business uuid) OWNER TO postgres;

--
-- Name: ontab_webhook_backlog(); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_webhook_backlog() RETURNS TABLE(endpoint_id uuid, pending bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT e.id,
           (SELECT count(*) FROM public.webhook_deliveries d
             WHERE d.business_id = e.business_id AND d.endpoint_id = e.id AND d.state = 'pending')
           + (SELECT count(*) FROM public.events ev
               WHERE ev.business_id = e.business_id AND ev.sequence > e.settled_through
                 AND (e.types IS NULL OR ev.type = ANY (e.types))
                 AND NOT EXISTS (SELECT 1 FROM public.webhook_deliveries o
                                  WHERE o.business_id = ev.business_id AND o.event_id = ev.id
                                    AND o.endpoint_id = e.id))
      FROM public.webhook_endpoints e
     WHERE NOT e.disabled
$$;

ALTER FUNCTION public.ontab_webhook_backlog() OWNER TO ontab_system;

--
-- Name: ontab_webhook_endpoint_deleted(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_webhook_endpoint_deleted() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
BEGIN
    DELETE FROM webhook_attempts a
     WHERE a.business_id = OLD.business_id AND a.endpoint_id = OLD.id;
    RETURN OLD;
END
$$;

ALTER FUNCTION public.ontab_webhook_endpoint_deleted() OWNER TO postgres;

--
-- Name: ontab_webhook_fan_out(integer); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_webhook_fan_out(p_limit integer) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_created bigint;
BEGIN
    v_created := (SELECT f.created FROM ontab_webhook_fan_out_leasing(p_limit, NULL, 0, 0) f);
    UPDATE webhook_endpoints e
       SET settled_through = e.fanned_out_through
     WHERE e.business_id = ontab_tenant() AND e.window_lease IS NULL
       AND e.settled_through <> e.fanned_out_through;
    RETURN v_created;
END
$$;

ALTER FUNCTION public.ontab_webhook_fan_out(p_limit integer) OWNER TO postgres;

--
-- Name: ontab_webhook_fan_out_due(integer, uuid); Type: FUNCTION; Schema: public; Owner: ontab_system
--

CREATE FUNCTION public.ontab_webhook_fan_out_due(p_limit integer, p_lease uuid) RETURNS SETOF uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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
     WHERE (e.window_lease IS NULL OR e.window_lease = p_lease OR e.window_leased_until <= now())
       AND next_event.sequence = e.fanned_out_through + 1
    UNION
    SELECT e.business_id
      FROM public.webhook_endpoints e
     WHERE e.window_lease IS DISTINCT FROM p_lease AND e.window_leased_until <= now()
       AND e.settled_through < e.fanned_out_through AND NOT e.disabled
     LIMIT p_limit;
END
$$;

ALTER FUNCTION public.ontab_webhook_fan_out_due(p_limit integer, p_lease uuid) OWNER TO ontab_system;

--
-- Name: ontab_webhook_fan_out_leasing(integer, uuid, integer, integer); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_webhook_fan_out_leasing(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, OUT created bigint, OUT leased uuid[]) RETURNS record
    LANGUAGE plpgsql
    SET random_page_cost TO '1.1'
    AS $_$
DECLARE
    -- A subject's run leased at once, as ontab_webhook_attempted_batch's.
    c_run constant int := 20;
    v_business uuid := ontab_tenant();
    v_until timestamptz := now() + make_interval(secs => p_lease_ms / 1000.0);
    -- Subjects that may still be leased: none without a lease to give.
    v_left int := CASE WHEN p_lease IS NULL THEN 0 ELSE greatest(p_max, 0) END;
    v_endpoint record;
    v_through bigint;
    v_to_lease uuid[];
    v_heads int;
    v_part record;
BEGIN
    created := 0::bigint;
    leased := '{}'::uuid[];
    FOR v_endpoint IN EXECUTE
        'SELECT e.id, e.types, e.disabled, e.fanned_out_through
           FROM webhook_endpoints e
          WHERE e.business_id = $1
          ORDER BY e.id
            FOR UPDATE'
        USING v_business
    LOOP
        -- Only the run of sequences that follows the cursor without a gap.
        EXECUTE
            'SELECT max(run.sequence)
               FROM (SELECT ev.sequence, row_number() OVER (ORDER BY ev.sequence) AS nth
                       FROM events ev
                      WHERE ev.business_id = $1 AND ev.sequence > $2
                      ORDER BY ev.sequence
                      LIMIT $3) AS run
              WHERE run.sequence = $2 + run.nth'
            INTO v_through
            USING v_business, v_endpoint.fanned_out_through, p_limit;
        CONTINUE WHEN v_through IS NULL;
        IF NOT v_endpoint.disabled THEN
            -- Which new deliveries to lease: of each new subject with
            -- nothing pending here, oldest first and as many subjects as
            -- may still be leased, its first new ones up to a run. Whether
            -- a subject has one pending is a probe of the pending index
            -- by the subject (LATERAL ... LIMIT 1): as NOT EXISTS, expected
            -- to meet one new subject, it was planned as a walk through
            -- all the endpoint's pending deliveries for each (5,000
            -- buffers for 60 events, bench/run.sh with auto_explain). A read
            -- of its own, so that the INSERT below stays one Citus pushes
            -- down to the business's shard whole (a window or a LIMIT in
            -- an INSERT's SELECT would send its rows through the
            -- coordinator, which a delegated call may not reach, 0019).
            IF v_left > 0 THEN
                EXECUTE
                    'WITH new AS (
                         SELECT ev.id, ev.sequence, coalesce(ev.subject_id, ev.business_id) AS subject_id,
                                row_number() OVER (PARTITION BY coalesce(ev.subject_id, ev.business_id)
                                                   ORDER BY ev.sequence) AS nth
                           FROM events ev
                          WHERE ev.business_id = $1 AND ev.sequence > $3 AND ev.sequence <= $4
                            AND ($5::text[] IS NULL OR ev.type = ANY ($5::text[]))
                     ), heads AS (
                         SELECT n.subject_id
                           FROM new n
                           LEFT JOIN LATERAL (
                                SELECT true AS pending
                                  FROM webhook_deliveries o
                                 WHERE o.business_id = $1 AND o.endpoint_id = $2
                                   AND o.subject_id = n.subject_id AND o.state = ''pending''
                                 LIMIT 1) p ON true
                          WHERE n.nth = 1 AND p.pending IS NULL
                          ORDER BY n.sequence
                          LIMIT $6
                     )
                     SELECT coalesce(array_agg(n.id), ''{}''::uuid[]) AS events,
                            (SELECT count(*) FROM heads)::int AS heads
                       FROM new n
                       JOIN heads h ON h.subject_id = n.subject_id
                      WHERE n.nth <= $7'
                    INTO v_to_lease, v_heads
                    USING v_business, v_endpoint.id, v_endpoint.fanned_out_through, v_through,
                          v_endpoint.types, v_left, c_run;
                v_left := v_left - v_heads;
            ELSE
                v_to_lease := '{}'::uuid[];
            END IF;
            -- Every new delivery in one INSERT, those chosen with the lease
            -- (parameters only in its CASE: Citus routes no STABLE call
            -- there, 0019).
            EXECUTE
                'WITH added AS (
                     INSERT INTO webhook_deliveries
                            (business_id, id, endpoint_id, event_id, sequence, subject_id, lease, leased_until)
                     SELECT ev.business_id, gen_random_uuid(), $2, ev.id, ev.sequence,
                            coalesce(ev.subject_id, ev.business_id),
                            CASE WHEN ev.id = ANY ($6::uuid[]) THEN $7::uuid END,
                            CASE WHEN ev.id = ANY ($6::uuid[]) THEN $8::timestamptz END
                       FROM events ev
                      WHERE ev.business_id = $1 AND ev.sequence > $3 AND ev.sequence <= $4
                        AND ($5::text[] IS NULL OR ev.type = ANY ($5::text[]))
                     RETURNING id, lease
                 )
                 SELECT count(*) AS created,
                        coalesce(array_agg(added.id) FILTER (WHERE added.lease IS NOT NULL),
                                 ''{}''::uuid[]) AS leased
                   FROM added'
                INTO v_part
                USING v_business, v_endpoint.id, v_endpoint.fanned_out_through, v_through,
                      v_endpoint.types, v_to_lease, p_lease, v_until;
            created := created + v_part.created;
            leased := leased || v_part.leased;
        END IF;
        UPDATE webhook_endpoints
           SET fanned_out_through = v_through
         WHERE business_id = v_business AND id = v_endpoint.id;
    END LOOP;
END
$_$;

ALTER FUNCTION public.ontab_webhook_fan_out_leasing(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, OUT created bigint, OUT leased uuid[]) OWNER TO postgres;

--
-- Name: ontab_webhook_fan_out_window(integer, uuid, integer, integer, uuid[], uuid[], bigint[], uuid[], uuid[], boolean[]); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_webhook_fan_out_window(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[]) RETURNS TABLE(endpoint_id uuid, held boolean, taken boolean, fanned bigint, handed uuid[], leased uuid[], created bigint)
    LANGUAGE plpgsql
    SET random_page_cost TO '1.1'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $_$
#variable_conflict use_column
DECLARE
    v_business uuid := ontab_tenant();
    v_now timestamptz := now();
    v_until timestamptz := now() + make_interval(secs => p_lease_ms / 1000.0);
    v_left int := greatest(coalesce(p_max, 0), 0);
    v_endpoint record;
    v_mine boolean;
    v_from bigint;
    v_through bigint;
    v_held_min bigint;
    v_busy uuid[];
    v_full boolean[];
    v_fast boolean;
    v_rows uuid[];
    v_leased uuid[];
    v_first_handed bigint;
    v_subjects_handed bigint;
    v_created bigint;
BEGIN
    -- The endpoints, and below the run of new sequences, are static
    -- statements planned once per session: a primary-key range and an
    -- index range in the index's order, whatever the tables' sizes (as
    -- EXECUTE, planning them was 200 µs of every call).
    FOR v_endpoint IN
        SELECT e.id, e.types, e.disabled, e.fanned_out_through, e.settled_through,
               e.window_lease, e.window_leased_until
          FROM webhook_endpoints e
         WHERE e.business_id = v_business
         ORDER BY e.id
           FOR NO KEY UPDATE
    LOOP
        endpoint_id := v_endpoint.id;
        handed := '{}'::uuid[];
        leased := '{}'::uuid[];
        created := 0;
        v_mine := v_endpoint.window_lease = p_lease AND v_endpoint.id = ANY (p_known);
        IF NOT v_mine AND v_endpoint.window_lease IS DISTINCT FROM p_lease
           AND v_endpoint.window_leased_until > v_now THEN
            -- Another server's window, still leased.
            held := false;
            taken := false;
            fanned := v_endpoint.fanned_out_through;
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- Taking a window over starts again from its settled cursor.
        v_from := CASE WHEN v_mine THEN v_endpoint.fanned_out_through
                       ELSE v_endpoint.settled_through END;
        SELECT max(run.sequence) INTO v_through
          FROM (SELECT ev.sequence, row_number() OVER (ORDER BY ev.sequence) AS nth
                  FROM events ev
                 WHERE ev.business_id = v_business AND ev.sequence > v_from
                 ORDER BY ev.sequence
                 LIMIT p_limit) AS run
         WHERE run.sequence = v_from + run.nth;
        v_through := coalesce(v_through, v_from);
        v_first_handed := NULL;
        IF v_through > v_from AND NOT v_endpoint.disabled THEN
            SELECT coalesce(array_agg(b.subject_id), '{}'::uuid[]),
                   coalesce(array_agg(coalesce(b.is_full, false)), '{}'::boolean[])
              INTO v_busy, v_full
              FROM unnest(p_busy_endpoints, p_busy_subjects, p_busy_full)
                   AS b(endpoint_id, subject_id, is_full)
             WHERE b.endpoint_id = v_endpoint.id;
            -- The common case, in one read of the new events: nothing pending
            -- at the endpoint and no queue full, so every new event is
            -- handed out (queued behind its subject's task when that
            -- subject is busy), provided its new subjects fit in p_max.
            -- Static statements: plain index ranges, planned once per
            -- session (each EXECUTE below is planned at every call).
            v_fast := NOT (true = ANY (v_full))
                      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                                       WHERE o.business_id = v_business
                                         AND o.endpoint_id = v_endpoint.id
                                         AND o.state = 'pending');
            IF v_fast THEN
                SELECT coalesce(array_agg(ev.id ORDER BY ev.sequence), '{}'::uuid[]),
                       min(ev.sequence),
                       count(DISTINCT coalesce(ev.subject_id, ev.business_id))
                         FILTER (WHERE NOT coalesce(ev.subject_id, ev.business_id) = ANY (v_busy))
                  INTO handed, v_first_handed, v_subjects_handed
                  FROM events ev
                 WHERE ev.business_id = v_business AND ev.sequence > v_from
                   AND ev.sequence <= v_through
                   AND (v_endpoint.types IS NULL OR ev.type = ANY (v_endpoint.types))
                   AND (v_mine OR NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                                               WHERE o.business_id = v_business
                                                 AND o.event_id = ev.id
                                                 AND o.endpoint_id = v_endpoint.id));
                v_rows := '{}'::uuid[];
                v_leased := '{}'::uuid[];
                IF v_subjects_handed > v_left THEN
                    v_fast := false;
                END IF;
            END IF;
            IF NOT v_fast THEN
                -- Each new subject's head among the pending rows, by one probe
                -- of the pending index (LATERAL ... LIMIT 1, as 0025). A subject
                -- with a pending row goes on as rows: leased to this server
                -- when it is sending that subject now and the head is its own,
                -- for the subject's task to send next. A subject this server
                -- is sending now with nothing pending is handed out in memory
                -- too, queued behind what its task sends ('queued'), unless its
                -- queue is full (p_busy_full: rows leased to it). The others,
                -- oldest first and as many as p_max, are handed out in memory,
                -- all their new events. After a takeover, events that already
                -- have a row here are left to it.
                EXECUTE
                    'WITH new AS MATERIALIZED (
                         SELECT ev.id, ev.sequence, coalesce(ev.subject_id, ev.business_id) AS subject_id
                           FROM events ev
                          WHERE ev.business_id = $1 AND ev.sequence > $3 AND ev.sequence <= $4
                            AND ($5::text[] IS NULL OR ev.type = ANY ($5::text[]))
                            AND ($6 OR NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                                                    WHERE o.business_id = $1 AND o.event_id = ev.id
                                                      AND o.endpoint_id = $2))
                     ), subjects AS (
                         SELECT n.subject_id, min(n.sequence) AS first
                           FROM new n GROUP BY n.subject_id
                     ), busy AS (
                         SELECT DISTINCT ON (b.subject_id) b.subject_id, b.is_full
                           FROM unnest($7::uuid[], $10::boolean[]) AS b(subject_id, is_full)
                     ), probed AS (
                         SELECT s.subject_id, s.first,
                                CASE WHEN h.id IS NOT NULL
                                          AND NOT (b.subject_id IS NOT NULL AND h.lease = $8)
                                     THEN ''row''
                                     WHEN b.subject_id IS NOT NULL AND (b.is_full OR h.id IS NOT NULL)
                                     THEN ''leased''
                                     WHEN b.subject_id IS NOT NULL THEN ''queued''
                                     WHEN h.id IS NOT NULL THEN ''row''
                                     ELSE ''memory'' END AS class
                           FROM subjects s
                           LEFT JOIN busy b ON b.subject_id = s.subject_id
                           LEFT JOIN LATERAL (
                                SELECT o.id, o.lease
                                  FROM webhook_deliveries o
                                 WHERE o.business_id = $1 AND o.endpoint_id = $2
                                   AND o.subject_id = s.subject_id AND o.state = ''pending''
                                 ORDER BY o.sequence, o.id
                                 LIMIT 1) h ON true
                     ), classed AS (
                         SELECT p.subject_id,
                                CASE WHEN p.class <> ''memory'' THEN p.class
                                     WHEN row_number() OVER (PARTITION BY p.class ORDER BY p.first) <= $9
                                     THEN ''memory''
                                     ELSE ''row'' END AS class
                           FROM probed p
                     )
                     SELECT coalesce(array_agg(n.id ORDER BY n.sequence)
                                       FILTER (WHERE c.class IN (''memory'', ''queued'')), ''{}''::uuid[]),
                            coalesce(array_agg(n.id) FILTER (WHERE c.class = ''row''), ''{}''::uuid[]),
                            coalesce(array_agg(n.id) FILTER (WHERE c.class = ''leased''), ''{}''::uuid[]),
                            min(n.sequence) FILTER (WHERE c.class IN (''memory'', ''queued'')),
                            count(DISTINCT n.subject_id) FILTER (WHERE c.class = ''memory'')
                       FROM new n
                       JOIN classed c ON c.subject_id = n.subject_id'
                    INTO handed, v_rows, v_leased, v_first_handed, v_subjects_handed
                    USING v_business, v_endpoint.id, v_from, v_through, v_endpoint.types, v_mine,
                          v_busy, p_lease, v_left, v_full;
            END IF;
            v_left := v_left - coalesce(v_subjects_handed, 0);
            IF cardinality(v_rows) + cardinality(v_leased) > 0 THEN
                -- One INSERT for the rows, those of busy subjects leased
                -- (parameters only in its CASE: Citus routes no STABLE
                -- call there, 0019).
                EXECUTE
                    'WITH added AS (
                         INSERT INTO webhook_deliveries
                                (business_id, id, endpoint_id, event_id, sequence, subject_id,
                                 lease, leased_until)
                         SELECT ev.business_id, gen_random_uuid(), $2, ev.id, ev.sequence,
                                coalesce(ev.subject_id, ev.business_id),
                                CASE WHEN ev.id = ANY ($5::uuid[]) THEN $6::uuid END,
                                CASE WHEN ev.id = ANY ($5::uuid[]) THEN $7::timestamptz END
                           FROM events ev
                          WHERE ev.business_id = $1 AND ev.sequence > $3 AND ev.sequence <= $4
                            AND (ev.id = ANY ($5::uuid[]) OR ev.id = ANY ($8::uuid[]))
                         RETURNING id, lease
                     )
                     SELECT count(*),
                            coalesce(array_agg(added.id) FILTER (WHERE added.lease IS NOT NULL),
                                     ''{}''::uuid[])
                       FROM added'
                    INTO v_created, leased
                    USING v_business, v_endpoint.id, v_from, v_through, v_leased, p_lease, v_until,
                          v_rows;
                created := v_created;
            END IF;
        END IF;
        -- The cursor may pass every event but those still held in memory.
        SELECT min(h.held_min) INTO v_held_min
          FROM unnest(p_held_endpoints, p_held_min) AS h(endpoint_id, held_min)
         WHERE h.endpoint_id = v_endpoint.id AND v_mine;
        UPDATE webhook_endpoints e
           SET fanned_out_through = v_through,
               settled_through = greatest(least(e.settled_through, v_through),
                                          least(v_through, v_first_handed - 1, v_held_min - 1)),
               window_lease = p_lease,
               window_leased_until = v_until
         WHERE e.business_id = v_business AND e.id = v_endpoint.id;
        held := true;
        taken := NOT v_mine;
        fanned := v_through;
        RETURN NEXT;
    END LOOP;
END
$_$;

ALTER FUNCTION public.ontab_webhook_fan_out_window(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[]) OWNER TO postgres;

--
-- Name: ontab_webhook_fan_out_window_for(integer, uuid, integer, integer, uuid[], uuid[], bigint[], uuid[], uuid[], boolean[], uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_webhook_fan_out_window_for(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[], p_business uuid) RETURNS TABLE(endpoint_id uuid, held boolean, taken boolean, fanned bigint, handed uuid[], leased uuid[], created bigint)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN QUERY
    SELECT f.endpoint_id, f.held, f.taken, f.fanned, f.handed, f.leased, f.created
      FROM ontab_webhook_fan_out_window(p_limit, p_lease, p_lease_ms, p_max, p_known,
                                        p_held_endpoints, p_held_min, p_busy_endpoints,
                                        p_busy_subjects, p_busy_full) f;
END
$$;

ALTER FUNCTION public.ontab_webhook_fan_out_window_for(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[], p_business uuid) OWNER TO postgres;

--
-- Name: ontab_write_off(uuid, uuid, bigint, text); Type: FUNCTION; Schema: public; Owner: ontab_writer
--

CREATE FUNCTION public.ontab_write_off(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text) RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
    SELECT ontab_credit(p_entry_id, p_customer_id, p_amount, 'write_off', p_reason)
$$;

ALTER FUNCTION public.ontab_write_off(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text) OWNER TO ontab_writer;

--
-- Name: ontab_write_off_for(uuid, uuid, bigint, text, uuid); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.ontab_write_off_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text, p_business uuid) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN ontab_write_off(p_entry_id, p_customer_id, p_amount, p_reason);
END
$$;

ALTER FUNCTION public.ontab_write_off_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text, p_business uuid) OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.api_keys (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    secret_sha256 bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    CONSTRAINT api_keys_secret_sha256_check CHECK ((octet_length(secret_sha256) = 32))
);

ALTER TABLE ONLY public.api_keys FORCE ROW LEVEL SECURITY;

ALTER TABLE public.api_keys OWNER TO postgres;

--
-- Name: businesses; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.businesses (
    id uuid NOT NULL,
    name text NOT NULL,
    currency text NOT NULL,
    payment_terms_days integer DEFAULT 30 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT businesses_currency_check CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT businesses_name_check CHECK (((char_length(name) >= 1) AND (char_length(name) <= 200))),
    CONSTRAINT businesses_payment_terms_days_check CHECK (((payment_terms_days >= 0) AND (payment_terms_days <= 365)))
);

ALTER TABLE ONLY public.businesses FORCE ROW LEVEL SECURITY;

ALTER TABLE public.businesses OWNER TO postgres;

--
-- Name: credit_ledger; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.credit_ledger (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    customer_id uuid NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    amount bigint NOT NULL,
    balance_after bigint NOT NULL,
    order_id uuid,
    return_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    due_at timestamp with time zone,
    reason text,
    hold_id uuid,
    purchases_to_date bigint NOT NULL,
    CONSTRAINT credit_ledger_amount_check CHECK (((amount >= '-9007199254740991'::bigint) AND (amount <= '9007199254740991'::bigint))),
    CONSTRAINT credit_ledger_balance_after_check CHECK (((balance_after >= '-9007199254740991'::bigint) AND (balance_after <= '9007199254740991'::bigint))),
    CONSTRAINT credit_ledger_check CHECK ((((kind = 'purchase'::text) AND (amount >= 0) AND (order_id IS NOT NULL) AND (return_id IS NULL)) OR ((kind = 'payment'::text) AND (amount < 0) AND (order_id IS NULL) AND (return_id IS NULL)) OR ((kind = 'return'::text) AND (amount <= 0) AND (order_id IS NOT NULL) AND (return_id IS NOT NULL)) OR ((kind = 'write_off'::text) AND (amount < 0) AND (order_id IS NULL) AND (return_id IS NULL)))),
    CONSTRAINT credit_ledger_check1 CHECK (((kind = 'purchase'::text) = (due_at IS NOT NULL))),
    CONSTRAINT credit_ledger_check2 CHECK (((kind = 'write_off'::text) = (reason IS NOT NULL))),
    CONSTRAINT credit_ledger_check3 CHECK (((hold_id IS NULL) OR (kind = 'purchase'::text))),
    CONSTRAINT credit_ledger_kind_check CHECK ((kind = ANY (ARRAY['purchase'::text, 'payment'::text, 'return'::text, 'write_off'::text]))),
    CONSTRAINT credit_ledger_purchases_to_date_nonnegative CHECK ((purchases_to_date >= 0)),
    CONSTRAINT credit_ledger_reason_check CHECK (((char_length(reason) >= 1) AND (char_length(reason) <= 200))),
    CONSTRAINT credit_ledger_seq_check CHECK ((seq >= 1))
);

ALTER TABLE ONLY public.credit_ledger FORCE ROW LEVEL SECURITY;

ALTER TABLE public.credit_ledger OWNER TO postgres;

--
-- Name: customer_changes; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.customer_changes (
    business_id uuid NOT NULL,
    id bigint NOT NULL,
    customer_id uuid NOT NULL,
    credit_limit bigint NOT NULL,
    status text NOT NULL,
    payment_terms_days integer NOT NULL,
    after_seq bigint NOT NULL,
    changed_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    changed_by text NOT NULL,
    CONSTRAINT customer_changes_after_seq_check CHECK ((after_seq >= 0)),
    CONSTRAINT customer_changes_changed_by_check CHECK (((char_length(changed_by) >= 1) AND (char_length(changed_by) <= 64))),
    CONSTRAINT customer_changes_credit_limit_check CHECK (((credit_limit >= 0) AND (credit_limit <= '9007199254740991'::bigint))),
    CONSTRAINT customer_changes_payment_terms_days_check CHECK (((payment_terms_days >= 0) AND (payment_terms_days <= 365))),
    CONSTRAINT customer_changes_status_check CHECK ((status = ANY (ARRAY['active'::text, 'on_hold'::text, 'closed'::text])))
);

ALTER TABLE ONLY public.customer_changes FORCE ROW LEVEL SECURITY;

ALTER TABLE public.customer_changes OWNER TO postgres;

--
-- Name: customer_changes_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

ALTER TABLE public.customer_changes ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.customer_changes_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: customers; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.customers (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    credit_limit bigint NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    payment_terms_days integer NOT NULL,
    held bigint DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT customers_credit_limit_check CHECK (((credit_limit >= 0) AND (credit_limit <= '9007199254740991'::bigint))),
    CONSTRAINT customers_held_check CHECK (((held >= 0) AND (held <= '9007199254740991'::bigint))),
    CONSTRAINT customers_name_check CHECK (((char_length(name) >= 1) AND (char_length(name) <= 200))),
    CONSTRAINT customers_payment_terms_days_check CHECK (((payment_terms_days >= 0) AND (payment_terms_days <= 365))),
    CONSTRAINT customers_status_check CHECK ((status = ANY (ARRAY['active'::text, 'on_hold'::text, 'closed'::text])))
);

ALTER TABLE ONLY public.customers FORCE ROW LEVEL SECURITY;

ALTER TABLE public.customers OWNER TO postgres;

--
-- Name: events; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.events (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    sequence bigint,
    type text NOT NULL,
    subject_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    data jsonb NOT NULL,
    "position" bigint NOT NULL,
    CONSTRAINT events_sequence_check CHECK ((sequence >= 1)),
    CONSTRAINT events_type_check CHECK ((type = ANY (ARRAY['customer.created'::text, 'customer.updated'::text, 'product.created'::text, 'product.updated'::text, 'stock.adjusted'::text, 'purchase.created'::text, 'payment.recorded'::text, 'return.recorded'::text, 'write_off.recorded'::text, 'hold.created'::text, 'hold.captured'::text, 'hold.voided'::text, 'hold.expired'::text, 'customer.overdue'::text])))
);

ALTER TABLE ONLY public.events FORCE ROW LEVEL SECURITY;

ALTER TABLE public.events OWNER TO postgres;

--
-- Name: event_positions; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE public.event_positions
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER TABLE public.event_positions OWNER TO postgres;

--
-- Name: event_positions; Type: SEQUENCE OWNED BY; Schema: public; Owner: postgres
--

ALTER SEQUENCE public.event_positions OWNED BY public.events."position";

--
-- Name: event_sequences; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.event_sequences (
    business_id uuid NOT NULL,
    last_sequence bigint DEFAULT 0 NOT NULL,
    pruned_through bigint DEFAULT 0 NOT NULL,
    last_position bigint,
    CONSTRAINT event_sequences_check CHECK (((pruned_through >= 0) AND (pruned_through <= last_sequence))),
    CONSTRAINT event_sequences_last_sequence_check CHECK ((last_sequence >= 0))
);

ALTER TABLE ONLY public.event_sequences FORCE ROW LEVEL SECURITY;

ALTER TABLE public.event_sequences OWNER TO postgres;

--
-- Name: events_baseline; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.events_baseline (
    business_id uuid NOT NULL,
    type text NOT NULL,
    existing bigint NOT NULL,
    CONSTRAINT events_baseline_existing_check CHECK ((existing >= 0))
);

ALTER TABLE ONLY public.events_baseline FORCE ROW LEVEL SECURITY;

ALTER TABLE public.events_baseline OWNER TO postgres;

--
-- Name: events_pruned; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.events_pruned (
    business_id uuid NOT NULL,
    type text NOT NULL,
    pruned bigint NOT NULL,
    CONSTRAINT events_pruned_pruned_check CHECK ((pruned >= 0))
);

ALTER TABLE ONLY public.events_pruned FORCE ROW LEVEL SECURITY;

ALTER TABLE public.events_pruned OWNER TO postgres;

--
-- Name: hold_endings; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.hold_endings (
    business_id uuid NOT NULL,
    hold_id uuid NOT NULL,
    outcome text NOT NULL,
    order_id uuid,
    ended_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT hold_endings_check CHECK (((outcome = 'captured'::text) = (order_id IS NOT NULL))),
    CONSTRAINT hold_endings_outcome_check CHECK ((outcome = ANY (ARRAY['captured'::text, 'voided'::text, 'expired'::text])))
);

ALTER TABLE ONLY public.hold_endings FORCE ROW LEVEL SECURITY;

ALTER TABLE public.hold_endings OWNER TO postgres;

--
-- Name: hold_items; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.hold_items (
    business_id uuid NOT NULL,
    hold_id uuid NOT NULL,
    line_no integer NOT NULL,
    product_id uuid NOT NULL,
    quantity bigint NOT NULL,
    unit_price bigint NOT NULL,
    line_total bigint NOT NULL,
    CONSTRAINT hold_items_check CHECK ((line_total = (quantity * unit_price))),
    CONSTRAINT hold_items_line_no_check CHECK ((line_no >= 1)),
    CONSTRAINT hold_items_line_total_check CHECK ((line_total <= '9007199254740991'::bigint)),
    CONSTRAINT hold_items_quantity_check CHECK (((quantity >= 1) AND (quantity <= '9007199254740991'::bigint))),
    CONSTRAINT hold_items_unit_price_check CHECK (((unit_price >= 0) AND (unit_price <= '9007199254740991'::bigint)))
);

ALTER TABLE ONLY public.hold_items FORCE ROW LEVEL SECURITY;

ALTER TABLE public.hold_items OWNER TO postgres;

--
-- Name: holds; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.holds (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    customer_id uuid NOT NULL,
    total bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT holds_check CHECK ((expires_at > created_at)),
    CONSTRAINT holds_total_check CHECK (((total >= 0) AND (total <= '9007199254740991'::bigint)))
);

ALTER TABLE ONLY public.holds FORCE ROW LEVEL SECURITY;

ALTER TABLE public.holds OWNER TO postgres;

--
-- Name: idempotency_keys; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.idempotency_keys (
    business_id uuid NOT NULL,
    key text NOT NULL,
    fingerprint bytea NOT NULL,
    status integer NOT NULL,
    body json NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT idempotency_keys_key_check CHECK (((char_length(key) >= 1) AND (char_length(key) <= 255))),
    CONSTRAINT idempotency_keys_status_check CHECK (((status >= 200) AND (status <= 499)))
);

ALTER TABLE ONLY public.idempotency_keys FORCE ROW LEVEL SECURITY;

ALTER TABLE public.idempotency_keys OWNER TO postgres;

--
-- Name: nats_cursors; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.nats_cursors (
    business_id uuid NOT NULL,
    published_through bigint DEFAULT 0 NOT NULL,
    CONSTRAINT nats_cursors_published_through_check CHECK ((published_through >= 0))
);

ALTER TABLE ONLY public.nats_cursors FORCE ROW LEVEL SECURITY;

ALTER TABLE public.nats_cursors OWNER TO postgres;

--
-- Name: ontab_migrations; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.ontab_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    sha256 bytea NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.ontab_migrations OWNER TO postgres;

--
-- Name: order_items; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.order_items (
    business_id uuid NOT NULL,
    order_id uuid NOT NULL,
    line_no integer NOT NULL,
    product_id uuid NOT NULL,
    quantity bigint NOT NULL,
    unit_price bigint NOT NULL,
    line_total bigint NOT NULL,
    CONSTRAINT order_items_check CHECK ((line_total = (quantity * unit_price))),
    CONSTRAINT order_items_line_no_check CHECK ((line_no >= 1)),
    CONSTRAINT order_items_line_total_check CHECK ((line_total <= '9007199254740991'::bigint)),
    CONSTRAINT order_items_quantity_check CHECK (((quantity >= 1) AND (quantity <= '9007199254740991'::bigint))),
    CONSTRAINT order_items_unit_price_check CHECK (((unit_price >= 0) AND (unit_price <= '9007199254740991'::bigint)))
);

ALTER TABLE ONLY public.order_items FORCE ROW LEVEL SECURITY;

ALTER TABLE public.order_items OWNER TO postgres;

--
-- Name: orders; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.orders (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    customer_id uuid NOT NULL,
    total bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    due_at timestamp with time zone NOT NULL,
    hold_id uuid,
    CONSTRAINT orders_check CHECK ((due_at >= created_at)),
    CONSTRAINT orders_total_check CHECK (((total >= 0) AND (total <= '9007199254740991'::bigint)))
);

ALTER TABLE ONLY public.orders FORCE ROW LEVEL SECURITY;

ALTER TABLE public.orders OWNER TO postgres;

--
-- Name: overdue_emitted; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.overdue_emitted (
    business_id uuid NOT NULL,
    order_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.overdue_emitted FORCE ROW LEVEL SECURITY;

ALTER TABLE public.overdue_emitted OWNER TO postgres;

--
-- Name: pending_hold_items; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.pending_hold_items (
    business_id uuid NOT NULL,
    hold_id uuid NOT NULL,
    product_id uuid NOT NULL,
    quantity bigint NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT pending_hold_items_quantity_check CHECK (((quantity >= 1) AND (quantity <= '9007199254740991'::bigint)))
);

ALTER TABLE ONLY public.pending_hold_items FORCE ROW LEVEL SECURITY;

ALTER TABLE public.pending_hold_items OWNER TO postgres;

--
-- Name: pending_holds; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.pending_holds (
    business_id uuid NOT NULL,
    hold_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    total bigint NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT pending_holds_total_check CHECK (((total >= 0) AND (total <= '9007199254740991'::bigint)))
);

ALTER TABLE ONLY public.pending_holds FORCE ROW LEVEL SECURITY;

ALTER TABLE public.pending_holds OWNER TO postgres;

--
-- Name: products; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.products (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    price bigint NOT NULL,
    stock bigint NOT NULL,
    initial_stock bigint NOT NULL,
    reserved bigint DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT products_initial_stock_check CHECK (((initial_stock >= 0) AND (initial_stock <= '9007199254740991'::bigint))),
    CONSTRAINT products_name_check CHECK (((char_length(name) >= 1) AND (char_length(name) <= 200))),
    CONSTRAINT products_price_check CHECK (((price >= 0) AND (price <= '9007199254740991'::bigint))),
    CONSTRAINT products_stock_check CHECK (((stock >= 0) AND (stock <= '9007199254740991'::bigint))),
    CONSTRAINT products_stock_covers_reserved CHECK (((reserved >= 0) AND (reserved <= stock)))
);

ALTER TABLE ONLY public.products FORCE ROW LEVEL SECURITY;

ALTER TABLE public.products OWNER TO postgres;

--
-- Name: return_items; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.return_items (
    business_id uuid NOT NULL,
    return_id uuid NOT NULL,
    order_id uuid NOT NULL,
    line_no integer NOT NULL,
    product_id uuid NOT NULL,
    quantity bigint NOT NULL,
    unit_price bigint NOT NULL,
    line_total bigint NOT NULL,
    CONSTRAINT return_items_check CHECK ((line_total = (quantity * unit_price))),
    CONSTRAINT return_items_line_no_check CHECK ((line_no >= 1)),
    CONSTRAINT return_items_line_total_check CHECK ((line_total <= '9007199254740991'::bigint)),
    CONSTRAINT return_items_quantity_check CHECK (((quantity >= 1) AND (quantity <= '9007199254740991'::bigint))),
    CONSTRAINT return_items_unit_price_check CHECK (((unit_price >= 0) AND (unit_price <= '9007199254740991'::bigint)))
);

ALTER TABLE ONLY public.return_items FORCE ROW LEVEL SECURITY;

ALTER TABLE public.return_items OWNER TO postgres;

--
-- Name: returns; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.returns (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    order_id uuid NOT NULL,
    amount bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT returns_amount_check CHECK (((amount >= 0) AND (amount <= '9007199254740991'::bigint)))
);

ALTER TABLE ONLY public.returns FORCE ROW LEVEL SECURITY;

ALTER TABLE public.returns OWNER TO postgres;

--
-- Name: stock_adjustments; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.stock_adjustments (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    product_id uuid NOT NULL,
    delta bigint NOT NULL,
    reason text NOT NULL,
    stock_after bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT stock_adjustments_delta_check CHECK (((delta <> 0) AND ((delta >= '-9007199254740991'::bigint) AND (delta <= '9007199254740991'::bigint)))),
    CONSTRAINT stock_adjustments_reason_check CHECK ((char_length(reason) <= 200)),
    CONSTRAINT stock_adjustments_stock_after_check CHECK (((stock_after >= 0) AND (stock_after <= '9007199254740991'::bigint)))
);

ALTER TABLE ONLY public.stock_adjustments FORCE ROW LEVEL SECURITY;

ALTER TABLE public.stock_adjustments OWNER TO postgres;

--
-- Name: webhook_attempts; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.webhook_attempts (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    delivery_id uuid,
    event_id uuid NOT NULL,
    attempt integer NOT NULL,
    status_code integer,
    error text,
    duration_ms integer NOT NULL,
    outcome text NOT NULL,
    next_attempt_at timestamp with time zone,
    attempted_at timestamp with time zone NOT NULL,
    CONSTRAINT webhook_attempts_attempt_check CHECK ((attempt >= 1)),
    CONSTRAINT webhook_attempts_duration_ms_check CHECK ((duration_ms >= 0)),
    CONSTRAINT webhook_attempts_error_check CHECK ((length(error) <= 1000)),
    CONSTRAINT webhook_attempts_outcome_check CHECK ((outcome = ANY (ARRAY['delivered'::text, 'retrying'::text, 'gave_up'::text, 'disabled'::text]))),
    CONSTRAINT webhook_attempts_status_code_check CHECK (((status_code >= 100) AND (status_code <= 999))),
    CONSTRAINT webhook_attempts_without_delivery_check CHECK (((delivery_id IS NOT NULL) OR ((outcome = 'delivered'::text) AND (attempt = 1))))
);

ALTER TABLE ONLY public.webhook_attempts FORCE ROW LEVEL SECURITY;

ALTER TABLE public.webhook_attempts OWNER TO postgres;

--
-- Name: webhook_deliveries; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.webhook_deliveries (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    event_id uuid NOT NULL,
    sequence bigint NOT NULL,
    subject_id uuid NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    lease uuid,
    leased_until timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    CONSTRAINT webhook_deliveries_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT webhook_deliveries_check CHECK (((state = 'pending'::text) = (finished_at IS NULL))),
    CONSTRAINT webhook_deliveries_check1 CHECK (((lease IS NULL) = (leased_until IS NULL))),
    CONSTRAINT webhook_deliveries_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])))
);
ALTER TABLE ONLY public.webhook_deliveries ALTER COLUMN business_id SET STATISTICS 0;

ALTER TABLE ONLY public.webhook_deliveries FORCE ROW LEVEL SECURITY;

ALTER TABLE public.webhook_deliveries OWNER TO postgres;

--
-- Name: webhook_endpoints; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.webhook_endpoints (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    url text NOT NULL,
    types text[],
    description text DEFAULT ''::text NOT NULL,
    disabled boolean DEFAULT false NOT NULL,
    disabled_reason text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    fanned_out_through bigint NOT NULL,
    settled_through bigint NOT NULL,
    window_lease uuid,
    window_leased_until timestamp with time zone,
    CONSTRAINT webhook_endpoints_check CHECK ((disabled = (disabled_reason IS NOT NULL))),
    CONSTRAINT webhook_endpoints_description_check CHECK ((length(description) <= 500)),
    CONSTRAINT webhook_endpoints_disabled_reason_check CHECK ((disabled_reason = ANY (ARRAY['requested'::text, 'gone'::text]))),
    CONSTRAINT webhook_endpoints_fanned_out_through_check CHECK ((fanned_out_through >= 0)),
    CONSTRAINT webhook_endpoints_settled_check CHECK (((settled_through >= 0) AND (settled_through <= fanned_out_through))),
    CONSTRAINT webhook_endpoints_types_check CHECK (((cardinality(types) >= 1) AND (cardinality(types) <= 64))),
    CONSTRAINT webhook_endpoints_url_check CHECK (((length(url) >= 1) AND (length(url) <= 2048))),
    CONSTRAINT webhook_endpoints_window_check CHECK (((window_lease IS NULL) = (window_leased_until IS NULL)))
);

ALTER TABLE ONLY public.webhook_endpoints FORCE ROW LEVEL SECURITY;

ALTER TABLE public.webhook_endpoints OWNER TO postgres;

--
-- Name: webhook_secrets; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.webhook_secrets (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    secret bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    CONSTRAINT webhook_secrets_secret_check CHECK (((length(secret) >= 24) AND (length(secret) <= 64)))
);

ALTER TABLE ONLY public.webhook_secrets FORCE ROW LEVEL SECURITY;

ALTER TABLE public.webhook_secrets OWNER TO postgres;

--
-- Name: events position; Type: DEFAULT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.events ALTER COLUMN "position" SET DEFAULT nextval('public.event_positions'::regclass);

--
-- Name: api_keys api_keys_id_key; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_id_key UNIQUE (id);

--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (business_id, id);

--
-- Name: businesses businesses_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.businesses
    ADD CONSTRAINT businesses_pkey PRIMARY KEY (id);

--
-- Name: credit_ledger credit_ledger_business_id_customer_id_seq_key; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.credit_ledger
    ADD CONSTRAINT credit_ledger_business_id_customer_id_seq_key UNIQUE (business_id, customer_id, seq) INCLUDE (balance_after, purchases_to_date);

--
-- Name: credit_ledger credit_ledger_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.credit_ledger
    ADD CONSTRAINT credit_ledger_pkey PRIMARY KEY (business_id, id);

--
-- Name: customer_changes customer_changes_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.customer_changes
    ADD CONSTRAINT customer_changes_pkey PRIMARY KEY (business_id, id);

--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (business_id, id);

--
-- Name: event_sequences event_sequences_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.event_sequences
    ADD CONSTRAINT event_sequences_pkey PRIMARY KEY (business_id);

--
-- Name: events_baseline events_baseline_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.events_baseline
    ADD CONSTRAINT events_baseline_pkey PRIMARY KEY (business_id, type);

--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (business_id, id);

--
-- Name: events_pruned events_pruned_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.events_pruned
    ADD CONSTRAINT events_pruned_pkey PRIMARY KEY (business_id, type);

--
-- Name: hold_endings hold_endings_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.hold_endings
    ADD CONSTRAINT hold_endings_pkey PRIMARY KEY (business_id, hold_id);

--
-- Name: hold_items hold_items_business_id_hold_id_line_no_key; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.hold_items
    ADD CONSTRAINT hold_items_business_id_hold_id_line_no_key UNIQUE (business_id, hold_id, line_no);

--
-- Name: hold_items hold_items_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.hold_items
    ADD CONSTRAINT hold_items_pkey PRIMARY KEY (business_id, hold_id, product_id);

--
-- Name: holds holds_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_pkey PRIMARY KEY (business_id, id);

--
-- Name: idempotency_keys idempotency_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (business_id, key);

--
-- Name: nats_cursors nats_cursors_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.nats_cursors
    ADD CONSTRAINT nats_cursors_pkey PRIMARY KEY (business_id);

--
-- Name: ontab_migrations ontab_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.ontab_migrations
    ADD CONSTRAINT ontab_migrations_pkey PRIMARY KEY (version);

--
-- Name: order_items order_items_business_id_order_id_line_no_key; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_business_id_order_id_line_no_key UNIQUE (business_id, order_id, line_no);

--
-- Name: order_items order_items_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_pkey PRIMARY KEY (business_id, order_id, product_id);

--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (business_id, id);

--
-- Name: overdue_emitted overdue_emitted_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.overdue_emitted
    ADD CONSTRAINT overdue_emitted_pkey PRIMARY KEY (business_id, order_id);

--
-- Name: pending_hold_items pending_hold_items_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.pending_hold_items
    ADD CONSTRAINT pending_hold_items_pkey PRIMARY KEY (business_id, hold_id, product_id);

--
-- Name: pending_holds pending_holds_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.pending_holds
    ADD CONSTRAINT pending_holds_pkey PRIMARY KEY (business_id, hold_id);

--
-- Name: products products_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (business_id, id);

--
-- Name: return_items return_items_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.return_items
    ADD CONSTRAINT return_items_pkey PRIMARY KEY (business_id, return_id, product_id);

--
-- Name: returns returns_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.returns
    ADD CONSTRAINT returns_pkey PRIMARY KEY (business_id, id);

--
-- Name: stock_adjustments stock_adjustments_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.stock_adjustments
    ADD CONSTRAINT stock_adjustments_pkey PRIMARY KEY (business_id, id);

--
-- Name: webhook_attempts webhook_attempts_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.webhook_attempts
    ADD CONSTRAINT webhook_attempts_pkey PRIMARY KEY (business_id, id);

--
-- Name: webhook_deliveries webhook_deliveries_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (business_id, id);

--
-- Name: webhook_endpoints webhook_endpoints_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (business_id, id);

--
-- Name: webhook_secrets webhook_secrets_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.webhook_secrets
    ADD CONSTRAINT webhook_secrets_pkey PRIMARY KEY (business_id, id);

--
-- Name: credit_ledger_by_time; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX credit_ledger_by_time ON public.credit_ledger USING btree (business_id, customer_id, created_at, seq);

--
-- Name: credit_ledger_one_per_order; Type: INDEX; Schema: public; Owner: postgres
--

CREATE UNIQUE INDEX credit_ledger_one_per_order ON public.credit_ledger USING btree (business_id, order_id) WHERE (kind = 'purchase'::text);

--
-- Name: credit_ledger_one_per_return; Type: INDEX; Schema: public; Owner: postgres
--

CREATE UNIQUE INDEX credit_ledger_one_per_return ON public.credit_ledger USING btree (business_id, return_id) WHERE (kind = 'return'::text);

--
-- Name: credit_ledger_open_purchases; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX credit_ledger_open_purchases ON public.credit_ledger USING btree (business_id, customer_id, purchases_to_date) INCLUDE (amount, created_at, due_at) WHERE ((kind = 'purchase'::text) AND (amount > 0));

--
-- Name: customer_changes_by_customer; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX customer_changes_by_customer ON public.customer_changes USING btree (business_id, customer_id, id);

--
-- Name: customers_by_creation; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX customers_by_creation ON public.customers USING btree (business_id, created_at, id);

--
-- Name: events_sequence; Type: INDEX; Schema: public; Owner: postgres
--

CREATE UNIQUE INDEX events_sequence ON public.events USING btree (business_id, sequence) WHERE (sequence IS NOT NULL);

--
-- Name: events_unsequenced; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX events_unsequenced ON public.events USING btree (business_id, "position") WHERE (sequence IS NULL);

--
-- Name: holds_by_customer; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX holds_by_customer ON public.holds USING btree (business_id, customer_id, created_at DESC, id DESC);

--
-- Name: holds_newest_first; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX holds_newest_first ON public.holds USING btree (business_id, created_at DESC, id DESC);

--
-- Name: idempotency_keys_by_age; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX idempotency_keys_by_age ON public.idempotency_keys USING btree (created_at);

--
-- Name: orders_by_customer; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX orders_by_customer ON public.orders USING btree (business_id, customer_id, created_at DESC, id DESC);

--
-- Name: orders_newest_first; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX orders_newest_first ON public.orders USING btree (business_id, created_at DESC, id DESC);

--
-- Name: orders_one_per_hold; Type: INDEX; Schema: public; Owner: postgres
--

CREATE UNIQUE INDEX orders_one_per_hold ON public.orders USING btree (business_id, hold_id) WHERE (hold_id IS NOT NULL);

--
-- Name: pending_hold_items_by_product; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX pending_hold_items_by_product ON public.pending_hold_items USING btree (business_id, product_id, expires_at);

--
-- Name: pending_holds_by_customer; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX pending_holds_by_customer ON public.pending_holds USING btree (business_id, customer_id, expires_at);

--
-- Name: pending_holds_by_expiry; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX pending_holds_by_expiry ON public.pending_holds USING btree (expires_at);

--
-- Name: products_by_creation; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX products_by_creation ON public.products USING btree (business_id, created_at, id);

--
-- Name: return_items_by_order_line; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX return_items_by_order_line ON public.return_items USING btree (business_id, order_id, product_id);

--
-- Name: returns_by_order; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX returns_by_order ON public.returns USING btree (business_id, order_id, created_at);

--
-- Name: stock_adjustments_by_product; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX stock_adjustments_by_product ON public.stock_adjustments USING btree (business_id, product_id, created_at);

--
-- Name: webhook_attempts_listing; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX webhook_attempts_listing ON public.webhook_attempts USING btree (business_id, endpoint_id, attempted_at DESC, id DESC);

--
-- Name: webhook_attempts_of_delivery; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX webhook_attempts_of_delivery ON public.webhook_attempts USING btree (business_id, delivery_id) WHERE (delivery_id IS NOT NULL);

--
-- Name: webhook_deliveries_of_event; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX webhook_deliveries_of_event ON public.webhook_deliveries USING btree (event_id, business_id);

--
-- Name: webhook_deliveries_pending; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX webhook_deliveries_pending ON public.webhook_deliveries USING btree (business_id, endpoint_id, subject_id, sequence, id) WHERE (state = 'pending'::text);

--
-- Name: webhook_endpoints_listing; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX webhook_endpoints_listing ON public.webhook_endpoints USING btree (business_id, created_at, id);

--
-- Name: webhook_secrets_of_endpoint; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX webhook_secrets_of_endpoint ON public.webhook_secrets USING btree (business_id, endpoint_id);

--
-- Name: credit_ledger credit_ledger_chain; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER credit_ledger_chain BEFORE INSERT ON public.credit_ledger FOR EACH ROW EXECUTE FUNCTION public.ontab_check_ledger_chain();

--
-- Name: credit_ledger credit_ledger_events; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER credit_ledger_events AFTER INSERT ON public.credit_ledger REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_ledger_events();

--
-- Name: credit_ledger credit_ledger_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER credit_ledger_immutable BEFORE DELETE OR UPDATE ON public.credit_ledger FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: credit_ledger credit_ledger_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER credit_ledger_no_truncate BEFORE TRUNCATE ON public.credit_ledger FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: customer_changes customer_changes_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER customer_changes_immutable BEFORE DELETE OR UPDATE ON public.customer_changes FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: customer_changes customer_changes_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER customer_changes_no_truncate BEFORE TRUNCATE ON public.customer_changes FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: customers customers_created_event; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER customers_created_event AFTER INSERT ON public.customers FOR EACH ROW EXECUTE FUNCTION public.ontab_customer_events();

--
-- Name: customers customers_default_terms; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER customers_default_terms BEFORE INSERT ON public.customers FOR EACH ROW WHEN ((new.payment_terms_days IS NULL)) EXECUTE FUNCTION public.ontab_default_customer_terms();

--
-- Name: customers customers_held_within_limit; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER customers_held_within_limit BEFORE UPDATE OF held ON public.customers FOR EACH ROW WHEN ((new.held > old.held)) EXECUTE FUNCTION public.ontab_check_held();

--
-- Name: customers customers_record_change; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER customers_record_change AFTER UPDATE OF credit_limit, status, payment_terms_days ON public.customers FOR EACH ROW WHEN ((((old.credit_limit IS DISTINCT FROM new.credit_limit) OR (old.status IS DISTINCT FROM new.status)) OR (old.payment_terms_days IS DISTINCT FROM new.payment_terms_days))) EXECUTE FUNCTION public.ontab_record_customer_change();

--
-- Name: customers customers_record_creation; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER customers_record_creation AFTER INSERT ON public.customers FOR EACH ROW EXECUTE FUNCTION public.ontab_record_customer_change();

--
-- Name: customers customers_status_rules; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER customers_status_rules BEFORE UPDATE OF status ON public.customers FOR EACH ROW WHEN ((old.status IS DISTINCT FROM new.status)) EXECUTE FUNCTION public.ontab_check_customer_status();

--
-- Name: customers customers_updated_event; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER customers_updated_event AFTER UPDATE ON public.customers FOR EACH ROW WHEN (((((old.name IS DISTINCT FROM new.name) OR (old.credit_limit IS DISTINCT FROM new.credit_limit)) OR (old.status IS DISTINCT FROM new.status)) OR (old.payment_terms_days IS DISTINCT FROM new.payment_terms_days))) EXECUTE FUNCTION public.ontab_customer_events();

--
-- Name: hold_endings hold_endings_checked; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER hold_endings_checked BEFORE INSERT ON public.hold_endings FOR EACH ROW EXECUTE FUNCTION public.ontab_check_hold_ending();

--
-- Name: hold_endings hold_endings_event; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER hold_endings_event AFTER INSERT ON public.hold_endings FOR EACH ROW EXECUTE FUNCTION public.ontab_hold_ended_events();

--
-- Name: hold_endings hold_endings_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER hold_endings_immutable BEFORE DELETE OR UPDATE ON public.hold_endings FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: hold_endings hold_endings_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER hold_endings_no_truncate BEFORE TRUNCATE ON public.hold_endings FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: hold_items hold_items_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER hold_items_immutable BEFORE DELETE OR UPDATE ON public.hold_items FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: hold_items hold_items_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER hold_items_no_truncate BEFORE TRUNCATE ON public.hold_items FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: holds holds_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER holds_immutable BEFORE DELETE OR UPDATE ON public.holds FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: holds holds_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER holds_no_truncate BEFORE TRUNCATE ON public.holds FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: order_items order_items_complete; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE CONSTRAINT TRIGGER order_items_complete AFTER INSERT ON public.order_items DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.ontab_check_order_of_line();

--
-- Name: order_items order_items_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER order_items_immutable BEFORE DELETE OR UPDATE ON public.order_items FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: order_items order_items_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER order_items_no_truncate BEFORE TRUNCATE ON public.order_items FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: orders orders_complete; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE CONSTRAINT TRIGGER orders_complete AFTER INSERT ON public.orders DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.ontab_check_order_complete();

--
-- Name: orders orders_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER orders_immutable BEFORE DELETE OR UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: orders orders_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER orders_no_truncate BEFORE TRUNCATE ON public.orders FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: pending_hold_items pending_hold_items_checked; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER pending_hold_items_checked BEFORE INSERT OR DELETE OR UPDATE ON public.pending_hold_items FOR EACH ROW EXECUTE FUNCTION public.ontab_check_pending_hold_item();

--
-- Name: pending_hold_items pending_hold_items_keep_reserved; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER pending_hold_items_keep_reserved AFTER INSERT OR DELETE ON public.pending_hold_items FOR EACH ROW EXECUTE FUNCTION public.ontab_keep_reserved();

--
-- Name: pending_holds pending_holds_checked; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER pending_holds_checked BEFORE INSERT OR DELETE OR UPDATE ON public.pending_holds FOR EACH ROW EXECUTE FUNCTION public.ontab_check_pending_hold();

--
-- Name: pending_holds pending_holds_created_event; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER pending_holds_created_event AFTER INSERT ON public.pending_holds FOR EACH ROW EXECUTE FUNCTION public.ontab_hold_created_events();

--
-- Name: pending_holds pending_holds_keep_held; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER pending_holds_keep_held AFTER INSERT OR DELETE ON public.pending_holds FOR EACH ROW EXECUTE FUNCTION public.ontab_keep_held();

--
-- Name: products products_created_event; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER products_created_event AFTER INSERT ON public.products FOR EACH ROW EXECUTE FUNCTION public.ontab_product_events();

--
-- Name: products products_keep_initial_stock; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER products_keep_initial_stock BEFORE UPDATE ON public.products FOR EACH ROW EXECUTE FUNCTION public.ontab_keep_initial_stock();

--
-- Name: products products_start_at_initial_stock; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER products_start_at_initial_stock AFTER INSERT ON public.products FOR EACH ROW WHEN ((new.stock IS DISTINCT FROM new.initial_stock)) EXECUTE FUNCTION public.ontab_refuse_unexplained_stock();

--
-- Name: products products_updated_event; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER products_updated_event AFTER UPDATE ON public.products FOR EACH ROW WHEN (((old.name IS DISTINCT FROM new.name) OR (old.price IS DISTINCT FROM new.price))) EXECUTE FUNCTION public.ontab_product_events();

--
-- Name: return_items return_items_complete; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE CONSTRAINT TRIGGER return_items_complete AFTER INSERT ON public.return_items DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.ontab_check_return_of_line();

--
-- Name: return_items return_items_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER return_items_immutable BEFORE DELETE OR UPDATE ON public.return_items FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: return_items return_items_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER return_items_no_truncate BEFORE TRUNCATE ON public.return_items FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: return_items return_items_within_purchase; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER return_items_within_purchase BEFORE INSERT ON public.return_items FOR EACH ROW EXECUTE FUNCTION public.ontab_check_return_line();

--
-- Name: returns returns_complete; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE CONSTRAINT TRIGGER returns_complete AFTER INSERT ON public.returns DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.ontab_check_return_complete();

--
-- Name: returns returns_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER returns_immutable BEFORE DELETE OR UPDATE ON public.returns FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: returns returns_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER returns_no_truncate BEFORE TRUNCATE ON public.returns FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: stock_adjustments stock_adjustments_event; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER stock_adjustments_event AFTER INSERT ON public.stock_adjustments FOR EACH ROW EXECUTE FUNCTION public.ontab_adjustment_events();

--
-- Name: stock_adjustments stock_adjustments_immutable; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER stock_adjustments_immutable BEFORE DELETE OR UPDATE ON public.stock_adjustments FOR EACH ROW EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: stock_adjustments stock_adjustments_no_truncate; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER stock_adjustments_no_truncate BEFORE TRUNCATE ON public.stock_adjustments FOR EACH STATEMENT EXECUTE FUNCTION public.ontab_refuse_history_change();

--
-- Name: webhook_endpoints webhook_endpoint_deleted; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER webhook_endpoint_deleted AFTER DELETE ON public.webhook_endpoints FOR EACH ROW EXECUTE FUNCTION public.ontab_webhook_endpoint_deleted();

--
-- Name: api_keys api_keys_business_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_business_id_fkey FOREIGN KEY (business_id) REFERENCES public.businesses(id);

--
-- Name: credit_ledger credit_ledger_business_id_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.credit_ledger
    ADD CONSTRAINT credit_ledger_business_id_customer_id_fkey FOREIGN KEY (business_id, customer_id) REFERENCES public.customers(business_id, id);

--
-- Name: credit_ledger credit_ledger_business_id_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.credit_ledger
    ADD CONSTRAINT credit_ledger_business_id_order_id_fkey FOREIGN KEY (business_id, order_id) REFERENCES public.orders(business_id, id);

--
-- Name: credit_ledger credit_ledger_business_id_return_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.credit_ledger
    ADD CONSTRAINT credit_ledger_business_id_return_id_fkey FOREIGN KEY (business_id, return_id) REFERENCES public.returns(business_id, id);

--
-- Name: customer_changes customer_changes_business_id_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.customer_changes
    ADD CONSTRAINT customer_changes_business_id_customer_id_fkey FOREIGN KEY (business_id, customer_id) REFERENCES public.customers(business_id, id);

--
-- Name: customers customers_business_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_business_id_fkey FOREIGN KEY (business_id) REFERENCES public.businesses(id);

--
-- Name: event_sequences event_sequences_business_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.event_sequences
    ADD CONSTRAINT event_sequences_business_id_fkey FOREIGN KEY (business_id) REFERENCES public.businesses(id);

--
-- Name: events_baseline events_baseline_business_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.events_baseline
    ADD CONSTRAINT events_baseline_business_id_fkey FOREIGN KEY (business_id) REFERENCES public.businesses(id);

--
-- Name: events_pruned events_pruned_business_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.events_pruned
    ADD CONSTRAINT events_pruned_business_id_fkey FOREIGN KEY (business_id) REFERENCES public.businesses(id);

--
-- Name: hold_endings hold_endings_business_id_hold_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.hold_endings
    ADD CONSTRAINT hold_endings_business_id_hold_id_fkey FOREIGN KEY (business_id, hold_id) REFERENCES public.holds(business_id, id);

--
-- Name: hold_endings hold_endings_business_id_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.hold_endings
    ADD CONSTRAINT hold_endings_business_id_order_id_fkey FOREIGN KEY (business_id, order_id) REFERENCES public.orders(business_id, id);

--
-- Name: hold_items hold_items_business_id_hold_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.hold_items
    ADD CONSTRAINT hold_items_business_id_hold_id_fkey FOREIGN KEY (business_id, hold_id) REFERENCES public.holds(business_id, id);

--
-- Name: hold_items hold_items_business_id_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.hold_items
    ADD CONSTRAINT hold_items_business_id_product_id_fkey FOREIGN KEY (business_id, product_id) REFERENCES public.products(business_id, id);

--
-- Name: holds holds_business_id_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_business_id_customer_id_fkey FOREIGN KEY (business_id, customer_id) REFERENCES public.customers(business_id, id);

--
-- Name: idempotency_keys idempotency_keys_business_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_business_id_fkey FOREIGN KEY (business_id) REFERENCES public.businesses(id);

--
-- Name: nats_cursors nats_cursors_business_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.nats_cursors
    ADD CONSTRAINT nats_cursors_business_id_fkey FOREIGN KEY (business_id) REFERENCES public.businesses(id);

--
-- Name: order_items order_items_business_id_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_business_id_order_id_fkey FOREIGN KEY (business_id, order_id) REFERENCES public.orders(business_id, id);

--
-- Name: order_items order_items_business_id_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_business_id_product_id_fkey FOREIGN KEY (business_id, product_id) REFERENCES public.products(business_id, id);

--
-- Name: orders orders_business_id_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_business_id_customer_id_fkey FOREIGN KEY (business_id, customer_id) REFERENCES public.customers(business_id, id);

--
-- Name: orders orders_business_id_hold_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_business_id_hold_id_fkey FOREIGN KEY (business_id, hold_id) REFERENCES public.holds(business_id, id);

--
-- Name: overdue_emitted overdue_emitted_business_id_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.overdue_emitted
    ADD CONSTRAINT overdue_emitted_business_id_order_id_fkey FOREIGN KEY (business_id, order_id) REFERENCES public.orders(business_id, id);

--
-- Name: pending_hold_items pending_hold_items_business_id_hold_id_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.pending_hold_items
    ADD CONSTRAINT pending_hold_items_business_id_hold_id_product_id_fkey FOREIGN KEY (business_id, hold_id, product_id) REFERENCES public.hold_items(business_id, hold_id, product_id);

--
-- Name: pending_holds pending_holds_business_id_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.pending_holds
    ADD CONSTRAINT pending_holds_business_id_customer_id_fkey FOREIGN KEY (business_id, customer_id) REFERENCES public.customers(business_id, id);

--
-- Name: pending_holds pending_holds_business_id_hold_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.pending_holds
    ADD CONSTRAINT pending_holds_business_id_hold_id_fkey FOREIGN KEY (business_id, hold_id) REFERENCES public.holds(business_id, id);

--
-- Name: products products_business_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products_business_id_fkey FOREIGN KEY (business_id) REFERENCES public.businesses(id);

--
-- Name: return_items return_items_business_id_order_id_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.return_items
    ADD CONSTRAINT return_items_business_id_order_id_product_id_fkey FOREIGN KEY (business_id, order_id, product_id) REFERENCES public.order_items(business_id, order_id, product_id);

--
-- Name: return_items return_items_business_id_return_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.return_items
    ADD CONSTRAINT return_items_business_id_return_id_fkey FOREIGN KEY (business_id, return_id) REFERENCES public.returns(business_id, id);

--
-- Name: returns returns_business_id_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.returns
    ADD CONSTRAINT returns_business_id_order_id_fkey FOREIGN KEY (business_id, order_id) REFERENCES public.orders(business_id, id);

--
-- Name: stock_adjustments stock_adjustments_business_id_product_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.stock_adjustments
    ADD CONSTRAINT stock_adjustments_business_id_product_id_fkey FOREIGN KEY (business_id, product_id) REFERENCES public.products(business_id, id);

--
-- Name: webhook_attempts webhook_attempts_business_id_delivery_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.webhook_attempts
    ADD CONSTRAINT webhook_attempts_business_id_delivery_id_fkey FOREIGN KEY (business_id, delivery_id) REFERENCES public.webhook_deliveries(business_id, id) ON DELETE CASCADE;

--
-- Name: webhook_deliveries webhook_deliveries_business_id_endpoint_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_business_id_endpoint_id_fkey FOREIGN KEY (business_id, endpoint_id) REFERENCES public.webhook_endpoints(business_id, id) ON DELETE CASCADE;

--
-- Name: webhook_deliveries webhook_deliveries_business_id_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_business_id_event_id_fkey FOREIGN KEY (business_id, event_id) REFERENCES public.events(business_id, id) ON DELETE CASCADE;

--
-- Name: webhook_endpoints webhook_endpoints_business_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_business_id_fkey FOREIGN KEY (business_id) REFERENCES public.businesses(id);

--
-- Name: webhook_secrets webhook_secrets_business_id_endpoint_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.webhook_secrets
    ADD CONSTRAINT webhook_secrets_business_id_endpoint_id_fkey FOREIGN KEY (business_id, endpoint_id) REFERENCES public.webhook_endpoints(business_id, id) ON DELETE CASCADE;

--
-- Name: api_keys; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.api_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: businesses business_listing; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY business_listing ON public.businesses FOR SELECT TO ontab_system USING (true);

--
-- Name: businesses; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.businesses ENABLE ROW LEVEL SECURITY;

--
-- Name: credit_ledger; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.credit_ledger ENABLE ROW LEVEL SECURITY;

--
-- Name: customer_changes; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.customer_changes ENABLE ROW LEVEL SECURITY;

--
-- Name: customers; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;

--
-- Name: webhook_deliveries delivery_claim; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY delivery_claim ON public.webhook_deliveries FOR SELECT TO ontab_system USING ((state = 'pending'::text));

--
-- Name: webhook_deliveries delivery_lease; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY delivery_lease ON public.webhook_deliveries FOR UPDATE TO ontab_system USING ((state = 'pending'::text)) WITH CHECK ((state = 'pending'::text));

--
-- Name: events delivery_workers; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY delivery_workers ON public.events FOR SELECT TO ontab_system USING ((sequence IS NOT NULL));

--
-- Name: nats_cursors delivery_workers; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY delivery_workers ON public.nats_cursors FOR SELECT TO ontab_system USING (true);

--
-- Name: webhook_endpoints delivery_workers; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY delivery_workers ON public.webhook_endpoints FOR SELECT TO ontab_system USING (true);

--
-- Name: event_sequences; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.event_sequences ENABLE ROW LEVEL SECURITY;

--
-- Name: events; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.events ENABLE ROW LEVEL SECURITY;

--
-- Name: events_baseline; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.events_baseline ENABLE ROW LEVEL SECURITY;

--
-- Name: events_pruned; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.events_pruned ENABLE ROW LEVEL SECURITY;

--
-- Name: idempotency_keys expiry; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY expiry ON public.idempotency_keys TO ontab_system USING ((created_at < (now() - '24:00:00'::interval)));

--
-- Name: pending_holds expiry_sweep; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY expiry_sweep ON public.pending_holds FOR SELECT TO ontab_system USING ((expires_at <= now()));

--
-- Name: hold_endings; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.hold_endings ENABLE ROW LEVEL SECURITY;

--
-- Name: hold_items; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.hold_items ENABLE ROW LEVEL SECURITY;

--
-- Name: holds; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.holds ENABLE ROW LEVEL SECURITY;

--
-- Name: idempotency_keys; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.idempotency_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: api_keys key_lookup; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY key_lookup ON public.api_keys FOR SELECT TO ontab_system USING ((revoked_at IS NULL));

--
-- Name: nats_cursors; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.nats_cursors ENABLE ROW LEVEL SECURITY;

--
-- Name: order_items; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.order_items ENABLE ROW LEVEL SECURITY;

--
-- Name: orders; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY;

--
-- Name: credit_ledger outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.credit_ledger FOR SELECT TO ontab_outbox USING (true);

--
-- Name: customers outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.customers FOR SELECT TO ontab_outbox USING (true);

--
-- Name: hold_endings outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.hold_endings FOR SELECT TO ontab_outbox USING (true);

--
-- Name: hold_items outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.hold_items FOR SELECT TO ontab_outbox USING (true);

--
-- Name: holds outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.holds FOR SELECT TO ontab_outbox USING (true);

--
-- Name: order_items outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.order_items FOR SELECT TO ontab_outbox USING (true);

--
-- Name: orders outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.orders FOR SELECT TO ontab_outbox USING (true);

--
-- Name: pending_hold_items outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.pending_hold_items FOR SELECT TO ontab_outbox USING (true);

--
-- Name: pending_holds outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.pending_holds FOR SELECT TO ontab_outbox USING (true);

--
-- Name: products outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.products FOR SELECT TO ontab_outbox USING (true);

--
-- Name: return_items outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.return_items FOR SELECT TO ontab_outbox USING (true);

--
-- Name: returns outbox_reads; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_reads ON public.returns FOR SELECT TO ontab_outbox USING (true);

--
-- Name: events outbox_writes; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY outbox_writes ON public.events FOR INSERT TO ontab_outbox WITH CHECK (true);

--
-- Name: overdue_emitted; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.overdue_emitted ENABLE ROW LEVEL SECURITY;

--
-- Name: pending_hold_items; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.pending_hold_items ENABLE ROW LEVEL SECURITY;

--
-- Name: pending_holds; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.pending_holds ENABLE ROW LEVEL SECURITY;

--
-- Name: products; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.products ENABLE ROW LEVEL SECURITY;

--
-- Name: return_items; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.return_items ENABLE ROW LEVEL SECURITY;

--
-- Name: returns; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.returns ENABLE ROW LEVEL SECURITY;

--
-- Name: events sequencer_work; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY sequencer_work ON public.events FOR SELECT TO ontab_system USING ((sequence IS NULL));

--
-- Name: stock_adjustments; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.stock_adjustments ENABLE ROW LEVEL SECURITY;

--
-- Name: api_keys tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.api_keys USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: businesses tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.businesses USING ((id = public.ontab_tenant())) WITH CHECK ((id = public.ontab_tenant()));

--
-- Name: credit_ledger tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.credit_ledger USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: customer_changes tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.customer_changes USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: customers tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.customers USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: event_sequences tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.event_sequences USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: events tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.events USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: events_baseline tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.events_baseline USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: events_pruned tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.events_pruned USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: hold_endings tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.hold_endings USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: hold_items tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.hold_items USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: holds tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.holds USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: idempotency_keys tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.idempotency_keys USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: nats_cursors tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.nats_cursors USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: order_items tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.order_items USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: orders tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.orders USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: overdue_emitted tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.overdue_emitted USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: pending_hold_items tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.pending_hold_items USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: pending_holds tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.pending_holds USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: products tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.products USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: return_items tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.return_items USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: returns tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.returns USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: stock_adjustments tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.stock_adjustments USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: webhook_attempts tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.webhook_attempts USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: webhook_deliveries tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.webhook_deliveries USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: webhook_endpoints tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.webhook_endpoints USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: webhook_secrets tenant_isolation; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY tenant_isolation ON public.webhook_secrets USING ((business_id = public.ontab_tenant())) WITH CHECK ((business_id = public.ontab_tenant()));

--
-- Name: webhook_attempts; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.webhook_attempts ENABLE ROW LEVEL SECURITY;

--
-- Name: webhook_deliveries; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.webhook_deliveries ENABLE ROW LEVEL SECURITY;

--
-- Name: webhook_endpoints; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.webhook_endpoints ENABLE ROW LEVEL SECURITY;

--
-- Name: webhook_secrets; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.webhook_secrets ENABLE ROW LEVEL SECURITY;

--
-- Name: SCHEMA public; Type: ACL; Schema: -; Owner: pg_database_owner
--

GRANT USAGE ON SCHEMA public TO ontab_app;
GRANT USAGE ON SCHEMA public TO ontab_writer;
GRANT USAGE ON SCHEMA public TO ontab_reserver;
GRANT USAGE ON SCHEMA public TO ontab_recorder;
GRANT USAGE ON SCHEMA public TO ontab_outbox;
GRANT USAGE ON SCHEMA public TO ontab_sequencer;

--
-- Name: FUNCTION ontab_account_refusal(p_customer_id uuid, p_status text, p_buying boolean); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_account_refusal(p_customer_id uuid, p_status text, p_buying boolean) TO ontab_app;
GRANT ALL ON FUNCTION public.ontab_account_refusal(p_customer_id uuid, p_status text, p_buying boolean) TO ontab_writer;

--
-- Name: FUNCTION ontab_adjust_stock(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_adjust_stock(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_adjust_stock(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text) TO ontab_app;

--
-- Name: FUNCTION ontab_adjust_stock_for(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_adjust_stock_for(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_adjust_stock_for(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_adjustment_events(); Type: ACL; Schema: public; Owner: ontab_outbox
--

REVOKE ALL ON FUNCTION public.ontab_adjustment_events() FROM PUBLIC;

--
-- Name: FUNCTION ontab_api_key(p_key_id uuid); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_api_key(p_key_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_api_key(p_key_id uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_business_ids(); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_business_ids() FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_business_ids() TO postgres;

--
-- Name: FUNCTION ontab_capture(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[]); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_capture(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_capture(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[]) TO ontab_app;

--
-- Name: FUNCTION ontab_capture_for(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_capture_for(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_capture_for(p_hold_id uuid, p_order_id uuid, p_entry_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_claim_webhook_deliveries(p_lease uuid, p_lease_ms integer, p_limit integer); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_claim_webhook_deliveries(p_lease uuid, p_lease_ms integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_claim_webhook_deliveries(p_lease uuid, p_lease_ms integer, p_limit integer) TO ontab_app;

--
-- Name: FUNCTION ontab_credit(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_kind text, p_reason text); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_credit(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_kind text, p_reason text) FROM PUBLIC;

--
-- Name: FUNCTION ontab_customer_events(); Type: ACL; Schema: public; Owner: ontab_outbox
--

REVOKE ALL ON FUNCTION public.ontab_customer_events() FROM PUBLIC;

--
-- Name: FUNCTION ontab_customer_json(p_business uuid, p_customer uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_customer_json(p_business uuid, p_customer uuid) TO ontab_outbox;

--
-- Name: FUNCTION ontab_end_hold(p_business uuid, p_hold uuid, p_outcome text, p_order uuid); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_end_hold(p_business uuid, p_hold uuid, p_outcome text, p_order uuid) FROM PUBLIC;

--
-- Name: FUNCTION ontab_entry_json(p_business uuid, p_entry uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_entry_json(p_business uuid, p_entry uuid) TO ontab_outbox;

--
-- Name: FUNCTION ontab_event_business_ids(); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_event_business_ids() FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_event_business_ids() TO ontab_app;

--
-- Name: FUNCTION ontab_event_prune_limit(p_business uuid); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_event_prune_limit(p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_event_prune_limit(p_business uuid) TO ontab_sequencer;

--
-- Name: FUNCTION ontab_expire_hold(p_hold_id uuid); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_expire_hold(p_hold_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_expire_hold(p_hold_id uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_expire_hold_for(p_hold_id uuid, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_expire_hold_for(p_hold_id uuid, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_expire_hold_for(p_hold_id uuid, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_expire_idempotency_keys(p_older_than interval); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_expire_idempotency_keys(p_older_than interval) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_expire_idempotency_keys(p_older_than interval) TO ontab_app;

--
-- Name: FUNCTION ontab_expired_hold_credit(p_business uuid, p_customer uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_expired_hold_credit(p_business uuid, p_customer uuid) TO ontab_app;
GRANT ALL ON FUNCTION public.ontab_expired_hold_credit(p_business uuid, p_customer uuid) TO ontab_writer;
GRANT ALL ON FUNCTION public.ontab_expired_hold_credit(p_business uuid, p_customer uuid) TO ontab_reserver;
GRANT ALL ON FUNCTION public.ontab_expired_hold_credit(p_business uuid, p_customer uuid) TO ontab_outbox;

--
-- Name: FUNCTION ontab_expired_holds(p_limit integer); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_expired_holds(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_expired_holds(p_limit integer) TO ontab_app;

--
-- Name: FUNCTION ontab_expired_reserve(p_business uuid, p_product uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_expired_reserve(p_business uuid, p_product uuid) TO ontab_app;
GRANT ALL ON FUNCTION public.ontab_expired_reserve(p_business uuid, p_product uuid) TO ontab_writer;
GRANT ALL ON FUNCTION public.ontab_expired_reserve(p_business uuid, p_product uuid) TO ontab_reserver;
GRANT ALL ON FUNCTION public.ontab_expired_reserve(p_business uuid, p_product uuid) TO ontab_outbox;

--
-- Name: FUNCTION ontab_hold(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_hold(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_hold(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer) TO ontab_app;

--
-- Name: FUNCTION ontab_hold_created_events(); Type: ACL; Schema: public; Owner: ontab_outbox
--

REVOKE ALL ON FUNCTION public.ontab_hold_created_events() FROM PUBLIC;

--
-- Name: FUNCTION ontab_hold_ended_events(); Type: ACL; Schema: public; Owner: ontab_outbox
--

REVOKE ALL ON FUNCTION public.ontab_hold_ended_events() FROM PUBLIC;

--
-- Name: FUNCTION ontab_hold_for(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_hold_for(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_hold_for(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_expires_in integer, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_hold_json(p_business uuid, p_hold uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_hold_json(p_business uuid, p_hold uuid) TO ontab_outbox;

--
-- Name: FUNCTION ontab_hold_view(p_business uuid, p_hold uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_hold_view(p_business uuid, p_hold uuid) TO ontab_outbox;

--
-- Name: FUNCTION ontab_json_time(t timestamp with time zone); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_json_time(t timestamp with time zone) TO ontab_outbox;

--
-- Name: FUNCTION ontab_keep_held(); Type: ACL; Schema: public; Owner: ontab_reserver
--

REVOKE ALL ON FUNCTION public.ontab_keep_held() FROM PUBLIC;

--
-- Name: FUNCTION ontab_keep_reserved(); Type: ACL; Schema: public; Owner: ontab_reserver
--

REVOKE ALL ON FUNCTION public.ontab_keep_reserved() FROM PUBLIC;

--
-- Name: FUNCTION ontab_ledger_events(); Type: ACL; Schema: public; Owner: ontab_outbox
--

REVOKE ALL ON FUNCTION public.ontab_ledger_events() FROM PUBLIC;

--
-- Name: FUNCTION ontab_ledger_head(p_business uuid, p_customer uuid, OUT seq bigint, OUT balance bigint, OUT created timestamp with time zone); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_ledger_head(p_business uuid, p_customer uuid, OUT seq bigint, OUT balance bigint, OUT created timestamp with time zone) TO ontab_app;
GRANT ALL ON FUNCTION public.ontab_ledger_head(p_business uuid, p_customer uuid, OUT seq bigint, OUT balance bigint, OUT created timestamp with time zone) TO ontab_writer;

--
-- Name: FUNCTION ontab_nats_due(p_limit integer); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_nats_due(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_nats_due(p_limit integer) TO ontab_app;

--
-- Name: FUNCTION ontab_order_json(p_business uuid, p_order uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_order_json(p_business uuid, p_order uuid) TO ontab_outbox;

--
-- Name: FUNCTION ontab_pay(p_entry_id uuid, p_customer_id uuid, p_amount bigint); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_pay(p_entry_id uuid, p_customer_id uuid, p_amount bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_pay(p_entry_id uuid, p_customer_id uuid, p_amount bigint) TO ontab_app;

--
-- Name: FUNCTION ontab_pay_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_pay_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_pay_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_product_events(); Type: ACL; Schema: public; Owner: ontab_outbox
--

REVOKE ALL ON FUNCTION public.ontab_product_events() FROM PUBLIC;

--
-- Name: FUNCTION ontab_product_json(p_business uuid, p_product uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_product_json(p_business uuid, p_product uuid) TO ontab_outbox;

--
-- Name: FUNCTION ontab_prune_events(p_before timestamp with time zone, p_limit integer); Type: ACL; Schema: public; Owner: ontab_sequencer
--

REVOKE ALL ON FUNCTION public.ontab_prune_events(p_before timestamp with time zone, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_prune_events(p_before timestamp with time zone, p_limit integer) TO ontab_app;

--
-- Name: FUNCTION ontab_prune_events_for(p_before timestamp with time zone, p_limit integer, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_prune_events_for(p_before timestamp with time zone, p_limit integer, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_prune_events_for(p_before timestamp with time zone, p_limit integer, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_purchase(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[]); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_purchase(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_purchase(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[]) TO ontab_app;

--
-- Name: FUNCTION ontab_purchase_batch(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[]); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_purchase_batch(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_purchase_batch(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[]) TO ontab_app;

--
-- Name: FUNCTION ontab_purchase_batch_for(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[], p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_purchase_batch_for(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[], p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_purchase_batch_for(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[], p_line_orders integer[], p_product_ids uuid[], p_quantities bigint[], p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_purchase_for(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_purchase_for(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_purchase_for(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_record_customer_change(); Type: ACL; Schema: public; Owner: ontab_recorder
--

REVOKE ALL ON FUNCTION public.ontab_record_customer_change() FROM PUBLIC;

--
-- Name: FUNCTION ontab_record_overdue(p_limit integer); Type: ACL; Schema: public; Owner: ontab_outbox
--

REVOKE ALL ON FUNCTION public.ontab_record_overdue(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_record_overdue(p_limit integer) TO ontab_app;

--
-- Name: FUNCTION ontab_record_overdue_for(p_limit integer, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_record_overdue_for(p_limit integer, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_record_overdue_for(p_limit integer, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_require_business(p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_require_business(p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_require_tenant(); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_require_tenant() TO ontab_app;
GRANT ALL ON FUNCTION public.ontab_require_tenant() TO ontab_writer;
GRANT ALL ON FUNCTION public.ontab_require_tenant() TO ontab_outbox;
GRANT ALL ON FUNCTION public.ontab_require_tenant() TO ontab_sequencer;

--
-- Name: FUNCTION ontab_return(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[]); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_return(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_return(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[]) TO ontab_app;

--
-- Name: FUNCTION ontab_return_for(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_return_for(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_return_for(p_return_id uuid, p_entry_id uuid, p_order_id uuid, p_product_ids uuid[], p_quantities bigint[], p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_return_json(p_business uuid, p_return uuid); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_return_json(p_business uuid, p_return uuid) TO ontab_outbox;

--
-- Name: FUNCTION ontab_sequence_events(p_limit integer); Type: ACL; Schema: public; Owner: ontab_sequencer
--

REVOKE ALL ON FUNCTION public.ontab_sequence_events(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_sequence_events(p_limit integer) TO ontab_app;

--
-- Name: FUNCTION ontab_sequence_events_for(p_limit integer, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_sequence_events_for(p_limit integer, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_sequence_events_for(p_limit integer, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_tenant(); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_tenant() TO ontab_app;
GRANT ALL ON FUNCTION public.ontab_tenant() TO ontab_writer;
GRANT ALL ON FUNCTION public.ontab_tenant() TO ontab_recorder;
GRANT ALL ON FUNCTION public.ontab_tenant() TO ontab_reserver;
GRANT ALL ON FUNCTION public.ontab_tenant() TO ontab_system;
GRANT ALL ON FUNCTION public.ontab_tenant() TO ontab_outbox;
GRANT ALL ON FUNCTION public.ontab_tenant() TO ontab_sequencer;

--
-- Name: FUNCTION ontab_unsequenced_businesses(p_limit integer); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_unsequenced_businesses(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_unsequenced_businesses(p_limit integer) TO ontab_app;

--
-- Name: FUNCTION ontab_update_customer(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_update_customer(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_update_customer(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer) TO ontab_app;

--
-- Name: FUNCTION ontab_update_customer_for(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_update_customer_for(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_update_customer_for(p_customer_id uuid, p_name text, p_credit_limit bigint, p_status text, p_payment_terms_days integer, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_uuid_v7(); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION public.ontab_uuid_v7() TO ontab_outbox;

--
-- Name: FUNCTION ontab_void(p_hold_id uuid); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_void(p_hold_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_void(p_hold_id uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_void_for(p_hold_id uuid, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_void_for(p_hold_id uuid, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_void_for(p_hold_id uuid, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_attempted_batch(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[]); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_webhook_attempted_batch(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_attempted_batch(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[]) TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_attempted_batch_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[], p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_webhook_attempted_batch_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[], p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_attempted_batch_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_deliveries uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_continue boolean[], p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_attempted_window(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_webhook_attempted_window(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_attempted_window(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean) TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_attempted_window_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_webhook_attempted_window_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_attempted_window_for(p_lease uuid, p_lease_ms integer, p_schedule bigint[], p_settle_endpoints uuid[], p_settle_through bigint[], p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[], p_status integer[], p_error text[], p_duration_ms integer[], p_attempted_at timestamp with time zone[], p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[], p_release_ids uuid[], p_rewrite boolean, p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_backlog(); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_webhook_backlog() FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_backlog() TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_endpoint_deleted(); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_webhook_endpoint_deleted() FROM PUBLIC;

--
-- Name: FUNCTION ontab_webhook_fan_out(p_limit integer); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_webhook_fan_out(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_fan_out(p_limit integer) TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_fan_out_due(p_limit integer, p_lease uuid); Type: ACL; Schema: public; Owner: ontab_system
--

REVOKE ALL ON FUNCTION public.ontab_webhook_fan_out_due(p_limit integer, p_lease uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_fan_out_due(p_limit integer, p_lease uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_fan_out_leasing(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, OUT created bigint, OUT leased uuid[]); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_webhook_fan_out_leasing(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, OUT created bigint, OUT leased uuid[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_fan_out_leasing(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, OUT created bigint, OUT leased uuid[]) TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_fan_out_window(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[]); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_webhook_fan_out_window(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_fan_out_window(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[]) TO ontab_app;

--
-- Name: FUNCTION ontab_webhook_fan_out_window_for(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[], p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_webhook_fan_out_window_for(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[], p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_webhook_fan_out_window_for(p_limit integer, p_lease uuid, p_lease_ms integer, p_max integer, p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[], p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[], p_business uuid) TO ontab_app;

--
-- Name: FUNCTION ontab_write_off(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text); Type: ACL; Schema: public; Owner: ontab_writer
--

REVOKE ALL ON FUNCTION public.ontab_write_off(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_write_off(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text) TO ontab_app;

--
-- Name: FUNCTION ontab_write_off_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text, p_business uuid); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION public.ontab_write_off_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text, p_business uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ontab_write_off_for(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text, p_business uuid) TO ontab_app;

--
-- Name: TABLE api_keys; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT ON TABLE public.api_keys TO ontab_app;
GRANT SELECT ON TABLE public.api_keys TO ontab_system;

--
-- Name: COLUMN api_keys.revoked_at; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(revoked_at) ON TABLE public.api_keys TO ontab_app;

--
-- Name: TABLE businesses; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT ON TABLE public.businesses TO ontab_app;
GRANT SELECT ON TABLE public.businesses TO ontab_system;

--
-- Name: COLUMN businesses.name; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(name) ON TABLE public.businesses TO ontab_app;

--
-- Name: COLUMN businesses.payment_terms_days; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(payment_terms_days) ON TABLE public.businesses TO ontab_app;

--
-- Name: TABLE credit_ledger; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.credit_ledger TO ontab_app;
GRANT SELECT,INSERT ON TABLE public.credit_ledger TO ontab_writer;
GRANT SELECT ON TABLE public.credit_ledger TO ontab_outbox;

--
-- Name: COLUMN credit_ledger.business_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(business_id) ON TABLE public.credit_ledger TO ontab_reserver;
GRANT SELECT(business_id) ON TABLE public.credit_ledger TO ontab_recorder;

--
-- Name: COLUMN credit_ledger.customer_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(customer_id) ON TABLE public.credit_ledger TO ontab_reserver;
GRANT SELECT(customer_id) ON TABLE public.credit_ledger TO ontab_recorder;

--
-- Name: COLUMN credit_ledger.seq; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(seq) ON TABLE public.credit_ledger TO ontab_reserver;
GRANT SELECT(seq) ON TABLE public.credit_ledger TO ontab_recorder;

--
-- Name: COLUMN credit_ledger.balance_after; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(balance_after) ON TABLE public.credit_ledger TO ontab_reserver;

--
-- Name: TABLE customer_changes; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.customer_changes TO ontab_app;
GRANT INSERT ON TABLE public.customer_changes TO ontab_recorder;

--
-- Name: SEQUENCE customer_changes_id_seq; Type: ACL; Schema: public; Owner: postgres
--

GRANT USAGE ON SEQUENCE public.customer_changes_id_seq TO ontab_recorder;

--
-- Name: TABLE customers; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT ON TABLE public.customers TO ontab_app;
GRANT SELECT ON TABLE public.customers TO ontab_writer;
GRANT SELECT ON TABLE public.customers TO ontab_outbox;

--
-- Name: COLUMN customers.business_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(business_id) ON TABLE public.customers TO ontab_writer;
GRANT SELECT(business_id) ON TABLE public.customers TO ontab_reserver;

--
-- Name: COLUMN customers.id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(id) ON TABLE public.customers TO ontab_reserver;

--
-- Name: COLUMN customers.name; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(name) ON TABLE public.customers TO ontab_app;

--
-- Name: COLUMN customers.credit_limit; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(credit_limit) ON TABLE public.customers TO ontab_app;

--
-- Name: COLUMN customers.status; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(status) ON TABLE public.customers TO ontab_app;

--
-- Name: COLUMN customers.payment_terms_days; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(payment_terms_days) ON TABLE public.customers TO ontab_app;

--
-- Name: COLUMN customers.held; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(held),UPDATE(held) ON TABLE public.customers TO ontab_reserver;

--
-- Name: TABLE events; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.events TO ontab_app;
GRANT SELECT,DELETE ON TABLE public.events TO ontab_sequencer;

--
-- Name: COLUMN events.business_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT INSERT(business_id) ON TABLE public.events TO ontab_outbox;
GRANT SELECT(business_id) ON TABLE public.events TO ontab_system;

--
-- Name: COLUMN events.id; Type: ACL; Schema: public; Owner: postgres
--

GRANT INSERT(id) ON TABLE public.events TO ontab_outbox;

--
-- Name: COLUMN events.sequence; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(sequence) ON TABLE public.events TO ontab_sequencer;
GRANT SELECT(sequence) ON TABLE public.events TO ontab_system;

--
-- Name: COLUMN events.type; Type: ACL; Schema: public; Owner: postgres
--

GRANT INSERT(type) ON TABLE public.events TO ontab_outbox;
GRANT SELECT(type) ON TABLE public.events TO ontab_system;

--
-- Name: COLUMN events.subject_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT INSERT(subject_id) ON TABLE public.events TO ontab_outbox;

--
-- Name: COLUMN events.created_at; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(created_at) ON TABLE public.events TO ontab_system;
GRANT INSERT(created_at) ON TABLE public.events TO ontab_outbox;

--
-- Name: COLUMN events.data; Type: ACL; Schema: public; Owner: postgres
--

GRANT INSERT(data) ON TABLE public.events TO ontab_outbox;

--
-- Name: COLUMN events."position"; Type: ACL; Schema: public; Owner: postgres
--

GRANT INSERT("position") ON TABLE public.events TO ontab_outbox;

--
-- Name: SEQUENCE event_positions; Type: ACL; Schema: public; Owner: postgres
--

GRANT USAGE ON SEQUENCE public.event_positions TO ontab_outbox;

--
-- Name: TABLE event_sequences; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.event_sequences TO ontab_app;
GRANT SELECT,INSERT,UPDATE ON TABLE public.event_sequences TO ontab_sequencer;

--
-- Name: TABLE events_baseline; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.events_baseline TO ontab_app;

--
-- Name: TABLE events_pruned; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.events_pruned TO ontab_app;
GRANT SELECT,INSERT,UPDATE ON TABLE public.events_pruned TO ontab_sequencer;

--
-- Name: TABLE hold_endings; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.hold_endings TO ontab_app;
GRANT SELECT,INSERT ON TABLE public.hold_endings TO ontab_writer;
GRANT SELECT ON TABLE public.hold_endings TO ontab_outbox;

--
-- Name: TABLE hold_items; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.hold_items TO ontab_app;
GRANT SELECT,INSERT ON TABLE public.hold_items TO ontab_writer;
GRANT SELECT ON TABLE public.hold_items TO ontab_outbox;

--
-- Name: TABLE holds; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.holds TO ontab_app;
GRANT SELECT,INSERT ON TABLE public.holds TO ontab_writer;
GRANT SELECT ON TABLE public.holds TO ontab_outbox;

--
-- Name: TABLE idempotency_keys; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT ON TABLE public.idempotency_keys TO ontab_app;
GRANT SELECT,DELETE ON TABLE public.idempotency_keys TO ontab_system;

--
-- Name: TABLE nats_cursors; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT ON TABLE public.nats_cursors TO ontab_app;
GRANT SELECT ON TABLE public.nats_cursors TO ontab_system;

--
-- Name: COLUMN nats_cursors.published_through; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(published_through) ON TABLE public.nats_cursors TO ontab_app;

--
-- Name: TABLE ontab_migrations; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.ontab_migrations TO ontab_app;

--
-- Name: TABLE order_items; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.order_items TO ontab_app;
GRANT SELECT,INSERT ON TABLE public.order_items TO ontab_writer;
GRANT SELECT ON TABLE public.order_items TO ontab_outbox;

--
-- Name: TABLE orders; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.orders TO ontab_app;
GRANT SELECT,INSERT ON TABLE public.orders TO ontab_writer;
GRANT SELECT ON TABLE public.orders TO ontab_outbox;

--
-- Name: TABLE overdue_emitted; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.overdue_emitted TO ontab_app;
GRANT SELECT,INSERT ON TABLE public.overdue_emitted TO ontab_outbox;

--
-- Name: TABLE pending_hold_items; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.pending_hold_items TO ontab_app;
GRANT SELECT,INSERT,DELETE ON TABLE public.pending_hold_items TO ontab_writer;
GRANT SELECT ON TABLE public.pending_hold_items TO ontab_outbox;

--
-- Name: TABLE pending_holds; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.pending_holds TO ontab_app;
GRANT SELECT,INSERT,DELETE ON TABLE public.pending_holds TO ontab_writer;
GRANT SELECT ON TABLE public.pending_holds TO ontab_outbox;

--
-- Name: COLUMN pending_holds.business_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(business_id) ON TABLE public.pending_holds TO ontab_reserver;
GRANT SELECT(business_id) ON TABLE public.pending_holds TO ontab_system;

--
-- Name: COLUMN pending_holds.hold_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(hold_id) ON TABLE public.pending_holds TO ontab_system;

--
-- Name: COLUMN pending_holds.customer_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(customer_id) ON TABLE public.pending_holds TO ontab_reserver;

--
-- Name: COLUMN pending_holds.total; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(total) ON TABLE public.pending_holds TO ontab_reserver;

--
-- Name: COLUMN pending_holds.expires_at; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(expires_at) ON TABLE public.pending_holds TO ontab_reserver;
GRANT SELECT(expires_at) ON TABLE public.pending_holds TO ontab_system;

--
-- Name: TABLE products; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT ON TABLE public.products TO ontab_app;
GRANT SELECT ON TABLE public.products TO ontab_writer;
GRANT SELECT ON TABLE public.products TO ontab_outbox;

--
-- Name: COLUMN products.business_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(business_id) ON TABLE public.products TO ontab_reserver;

--
-- Name: COLUMN products.id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(id) ON TABLE public.products TO ontab_reserver;

--
-- Name: COLUMN products.name; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(name) ON TABLE public.products TO ontab_app;

--
-- Name: COLUMN products.price; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(price) ON TABLE public.products TO ontab_app;

--
-- Name: COLUMN products.stock; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(stock) ON TABLE public.products TO ontab_writer;

--
-- Name: COLUMN products.reserved; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(reserved),UPDATE(reserved) ON TABLE public.products TO ontab_reserver;

--
-- Name: TABLE return_items; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.return_items TO ontab_app;
GRANT SELECT,INSERT ON TABLE public.return_items TO ontab_writer;
GRANT SELECT ON TABLE public.return_items TO ontab_outbox;

--
-- Name: TABLE returns; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.returns TO ontab_app;
GRANT SELECT,INSERT ON TABLE public.returns TO ontab_writer;
GRANT SELECT ON TABLE public.returns TO ontab_outbox;

--
-- Name: TABLE stock_adjustments; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.stock_adjustments TO ontab_app;
GRANT INSERT ON TABLE public.stock_adjustments TO ontab_writer;

--
-- Name: TABLE webhook_attempts; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT,DELETE ON TABLE public.webhook_attempts TO ontab_app;
GRANT DELETE ON TABLE public.webhook_attempts TO ontab_sequencer;

--
-- Name: COLUMN webhook_attempts.business_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(business_id) ON TABLE public.webhook_attempts TO ontab_sequencer;

--
-- Name: COLUMN webhook_attempts.endpoint_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(endpoint_id) ON TABLE public.webhook_attempts TO ontab_sequencer;

--
-- Name: COLUMN webhook_attempts.delivery_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(delivery_id) ON TABLE public.webhook_attempts TO ontab_sequencer;

--
-- Name: COLUMN webhook_attempts.attempted_at; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(attempted_at) ON TABLE public.webhook_attempts TO ontab_sequencer;

--
-- Name: TABLE webhook_deliveries; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT ON TABLE public.webhook_deliveries TO ontab_app;

--
-- Name: COLUMN webhook_deliveries.business_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(business_id) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(id) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.endpoint_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(endpoint_id) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.event_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(event_id) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.sequence; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(sequence) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.subject_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(subject_id) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.state; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(state) ON TABLE public.webhook_deliveries TO ontab_app;
GRANT SELECT(state) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.attempts; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(attempts) ON TABLE public.webhook_deliveries TO ontab_app;

--
-- Name: COLUMN webhook_deliveries.next_attempt_at; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(next_attempt_at) ON TABLE public.webhook_deliveries TO ontab_app;
GRANT SELECT(next_attempt_at) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.lease; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(lease) ON TABLE public.webhook_deliveries TO ontab_app;
GRANT SELECT(lease),UPDATE(lease) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.leased_until; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(leased_until) ON TABLE public.webhook_deliveries TO ontab_app;
GRANT SELECT(leased_until),UPDATE(leased_until) ON TABLE public.webhook_deliveries TO ontab_system;

--
-- Name: COLUMN webhook_deliveries.finished_at; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(finished_at) ON TABLE public.webhook_deliveries TO ontab_app;

--
-- Name: TABLE webhook_endpoints; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT,DELETE ON TABLE public.webhook_endpoints TO ontab_app;

--
-- Name: COLUMN webhook_endpoints.business_id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(business_id) ON TABLE public.webhook_endpoints TO ontab_system;
GRANT SELECT(business_id) ON TABLE public.webhook_endpoints TO ontab_sequencer;

--
-- Name: COLUMN webhook_endpoints.id; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT(id) ON TABLE public.webhook_endpoints TO ontab_system;
GRANT SELECT(id) ON TABLE public.webhook_endpoints TO ontab_sequencer;

--
-- Name: COLUMN webhook_endpoints.url; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(url) ON TABLE public.webhook_endpoints TO ontab_app;

--
-- Name: COLUMN webhook_endpoints.types; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(types) ON TABLE public.webhook_endpoints TO ontab_app;
GRANT SELECT(types) ON TABLE public.webhook_endpoints TO ontab_system;

--
-- Name: COLUMN webhook_endpoints.description; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(description) ON TABLE public.webhook_endpoints TO ontab_app;

--
-- Name: COLUMN webhook_endpoints.disabled; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(disabled) ON TABLE public.webhook_endpoints TO ontab_app;
GRANT SELECT(disabled) ON TABLE public.webhook_endpoints TO ontab_system;

--
-- Name: COLUMN webhook_endpoints.disabled_reason; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(disabled_reason) ON TABLE public.webhook_endpoints TO ontab_app;

--
-- Name: COLUMN webhook_endpoints.updated_at; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(updated_at) ON TABLE public.webhook_endpoints TO ontab_app;

--
-- Name: COLUMN webhook_endpoints.fanned_out_through; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(fanned_out_through) ON TABLE public.webhook_endpoints TO ontab_app;
GRANT SELECT(fanned_out_through) ON TABLE public.webhook_endpoints TO ontab_system;

--
-- Name: COLUMN webhook_endpoints.settled_through; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(settled_through) ON TABLE public.webhook_endpoints TO ontab_app;
GRANT SELECT(settled_through) ON TABLE public.webhook_endpoints TO ontab_system;

--
-- Name: COLUMN webhook_endpoints.window_lease; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(window_lease) ON TABLE public.webhook_endpoints TO ontab_app;
GRANT SELECT(window_lease) ON TABLE public.webhook_endpoints TO ontab_system;

--
-- Name: COLUMN webhook_endpoints.window_leased_until; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(window_leased_until) ON TABLE public.webhook_endpoints TO ontab_app;
GRANT SELECT(window_leased_until) ON TABLE public.webhook_endpoints TO ontab_system;

--
-- Name: TABLE webhook_secrets; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT ON TABLE public.webhook_secrets TO ontab_app;

--
-- Name: COLUMN webhook_secrets.expires_at; Type: ACL; Schema: public; Owner: postgres
--

GRANT UPDATE(expires_at) ON TABLE public.webhook_secrets TO ontab_app;

--
-- PostgreSQL database dump complete
--

