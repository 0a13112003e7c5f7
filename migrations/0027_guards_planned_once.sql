-- A lone purchase runs its order checks where the batch runs them, and the
-- tenant check has a fixed search_path: so PostgreSQL plans each of them
-- once per connection, not at every switch between the two paths.
--
-- A session keeps each function statement's plan, and plans it again when
-- it is used under another search_path or, where row level security
-- applies, as another role (the plan cache's own rule). Two functions were
-- called in two settings on the same connection:
--
--   * the order checks (constraint triggers orders_complete and
--     order_items_complete) ran inside the purchase batch, at its SET
--     CONSTRAINTS … IMMEDIATE, as ontab_writer with search_path
--     pg_catalog, public; and at the COMMIT of a lone purchase (deferred
--     past ontab_purchase), as the server's role ontab_app with the
--     session's search_path;
--   * ontab_require_tenant() is called by every ontab_*_for wrapper (as
--     ontab_app, the session's search_path) and by the use case it wraps
--     (as ontab_writer, pg_catalog, public).
--
-- A server connection alternates between batches and lone purchases, so
-- these statements were planned again at nearly every call. In the
-- uncontended benchmark at 16 clients (about as many lone purchases as
-- batches) PostgreSQL spent 1.23 s planning in 15 s, 0.21 s once the
-- settings agreed: some 30 µs per purchase. A session alternating 20 lone
-- purchases with 20 batches of two planned the line check 43 times in 80
-- calls; now 6 (the five custom plans PostgreSQL tries first, then one
-- generic plan kept).
--
-- ontab_purchase now fires the checks of its order before it returns, as
-- ontab_purchase_batch does, so both run them as ontab_writer with the
-- same search_path. The checks themselves are unchanged and still run as
-- whoever writes: an order written outside the use cases (by the owner,
-- say) is checked at its COMMIT as before. ontab_require_tenant() reads no
-- table, so only its search_path mattered. The rest of ontab_purchase is
-- as it stood (docs/schema.sql before this migration).

CREATE OR REPLACE FUNCTION ontab_purchase(p_order_id uuid, p_entry_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[]) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public
SET plan_cache_mode = force_generic_plan
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

ALTER FUNCTION ontab_require_tenant() SET search_path = pg_catalog, public;
