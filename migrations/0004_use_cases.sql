-- The money- and stock-moving use cases, one function each, so that a
-- purchase is one round trip while its locks are held.
--
-- Conventions shared by all four:
-- * They run as the caller (SECURITY INVOKER): row level security and every
--   guard of 0002 apply to what they write.
-- * Lock order is always customer first, then products by id. Two
--   transactions can therefore never wait on each other in a cycle.
-- * In READ COMMITTED a statement that waited for a row lock keeps its old
--   snapshot for everything else it reads. So the rows that matter (latest
--   ledger entry, stock, prices) are read by statements that run after the
--   locking statement; each PL/pgSQL statement takes a fresh snapshot.
-- * An expected refusal (not found, out of stock, over the limit) is
--   returned as {"error": code, ...facts} before anything is written, not
--   raised, so the caller's transaction stays usable (it records the
--   outcome for Idempotency-Key replays). Anything raised is a bug or a
--   guard firing, and aborts the transaction.

CREATE FUNCTION ontab_require_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
DECLARE
    tenant uuid := ontab_tenant();
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant set for this transaction' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN tenant;
END
$$;

-- Newest entry of a customer's chain, (0, 0) for an empty one: an index
-- probe on (business_id, customer_id, seq), however long the history.
CREATE FUNCTION ontab_ledger_head(p_business uuid, p_customer uuid, OUT seq bigint, OUT balance bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT c.seq, c.balance_after INTO seq, balance
      FROM credit_ledger c
     WHERE c.business_id = p_business AND c.customer_id = p_customer
     ORDER BY c.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        seq := 0;
        balance := 0;
    END IF;
END
$$;

CREATE FUNCTION ontab_purchase(p_order_id uuid, p_entry_id uuid, p_customer_id uuid,
                               p_product_ids uuid[], p_quantities bigint[])
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    credit_limit_now bigint;
    head record;
    line record;
    order_total numeric := 0;
    short_product uuid;
    short_requested bigint;
    short_available bigint;
    created timestamptz := now();
    items jsonb;
BEGIN
    SELECT credit_limit INTO credit_limit_now
      FROM customers
     WHERE business_id = tenant AND id = p_customer_id
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'customer', 'id', p_customer_id);
    END IF;

    PERFORM 1
       FROM products
      WHERE business_id = tenant AND id = ANY (p_product_ids)
      ORDER BY id
        FOR UPDATE;

    -- Lines arrive merged (one per product) in request order.
    FOR line IN
        SELECT l.product_id, l.quantity, p.price, p.stock
          FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          LEFT JOIN products p ON p.business_id = tenant AND p.id = l.product_id
         ORDER BY l.ord
    LOOP
        IF line.price IS NULL THEN
            RETURN jsonb_build_object('error', 'not_found', 'resource', 'product', 'id', line.product_id);
        END IF;
        IF short_product IS NULL AND line.stock < line.quantity THEN
            short_product := line.product_id;
            short_requested := line.quantity;
            short_available := line.stock;
        END IF;
        order_total := order_total + line.price::numeric * line.quantity;
    END LOOP;

    IF order_total > 9223372036854775807 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                  'message', 'order total exceeds the largest representable amount');
    END IF;
    IF short_product IS NOT NULL THEN
        RETURN jsonb_build_object('error', 'insufficient_stock', 'product_id', short_product,
                                  'requested', short_requested, 'available', short_available);
    END IF;

    head := ontab_ledger_head(tenant, p_customer_id);
    IF head.balance + order_total > credit_limit_now THEN
        RETURN jsonb_build_object('error', 'credit_limit_exceeded', 'credit_limit', credit_limit_now,
                                  'balance', head.balance, 'order_total', order_total::bigint);
    END IF;

    INSERT INTO orders (business_id, id, customer_id, total, created_at)
    VALUES (tenant, p_order_id, p_customer_id, order_total, created);

    WITH written AS (
        INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total)
        SELECT tenant, p_order_id, l.ord, l.product_id, l.quantity, p.price, p.price * l.quantity
          FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          JOIN products p ON p.business_id = tenant AND p.id = l.product_id
        RETURNING line_no, product_id, quantity, unit_price, line_total
    )
    SELECT jsonb_agg(jsonb_build_object('product_id', product_id, 'quantity', quantity,
                                        'unit_price', unit_price, 'line_total', line_total)
                     ORDER BY line_no)
      INTO items
      FROM written;

    UPDATE products p
       SET stock = p.stock - l.quantity
      FROM unnest(p_product_ids, p_quantities) AS l (product_id, quantity)
     WHERE p.business_id = tenant AND p.id = l.product_id;

    INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, order_id, created_at)
    VALUES (tenant, p_entry_id, p_customer_id, head.seq + 1, 'purchase', order_total,
            head.balance + order_total, p_order_id, created);

    RETURN jsonb_build_object('order', jsonb_build_object(
        'id', p_order_id, 'customer_id', p_customer_id, 'total', order_total::bigint,
        'created_at', created, 'items', items));
END
$$;

CREATE FUNCTION ontab_pay(p_entry_id uuid, p_customer_id uuid, p_amount bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    head record;
    created timestamptz := now();
BEGIN
    PERFORM 1 FROM customers WHERE business_id = tenant AND id = p_customer_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'customer', 'id', p_customer_id);
    END IF;

    head := ontab_ledger_head(tenant, p_customer_id);
    IF p_amount > head.balance THEN
        RETURN jsonb_build_object('error', 'payment_exceeds_balance', 'balance', head.balance, 'amount', p_amount);
    END IF;

    INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, created_at)
    VALUES (tenant, p_entry_id, p_customer_id, head.seq + 1, 'payment', -p_amount, head.balance - p_amount, created);

    RETURN jsonb_build_object('entry', jsonb_build_object(
        'id', p_entry_id, 'customer_id', p_customer_id, 'kind', 'payment', 'amount', -p_amount,
        'balance_after', head.balance - p_amount, 'order_id', NULL, 'return_id', NULL,
        'seq', head.seq + 1, 'created_at', created));
END
$$;

CREATE FUNCTION ontab_return(p_return_id uuid, p_entry_id uuid, p_order_id uuid,
                             p_product_ids uuid[], p_quantities bigint[])
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    buyer uuid;
    head record;
    line record;
    return_amount numeric := 0;
    created timestamptz := now();
    items jsonb;
BEGIN
    SELECT customer_id INTO buyer FROM orders WHERE business_id = tenant AND id = p_order_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'order', 'id', p_order_id);
    END IF;

    -- The customer lock serializes this return with every other movement of
    -- the buyer's ledger, and with other returns of the same order.
    PERFORM 1 FROM customers WHERE business_id = tenant AND id = buyer FOR UPDATE;
    PERFORM 1
       FROM products
      WHERE business_id = tenant AND id = ANY (p_product_ids)
      ORDER BY id
        FOR UPDATE;

    FOR line IN
        SELECT l.product_id, l.quantity, oi.unit_price,
               coalesce(oi.quantity, 0) - coalesce(
                   (SELECT sum(ri.quantity) FROM return_items ri
                     WHERE ri.business_id = tenant AND ri.order_id = p_order_id
                       AND ri.product_id = l.product_id), 0) AS returnable
          FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          LEFT JOIN order_items oi
                 ON oi.business_id = tenant AND oi.order_id = p_order_id AND oi.product_id = l.product_id
         ORDER BY l.ord
    LOOP
        IF line.quantity > line.returnable THEN
            RETURN jsonb_build_object('error', 'return_exceeds_purchase', 'product_id', line.product_id,
                                      'returnable', line.returnable);
        END IF;
        return_amount := return_amount + line.unit_price::numeric * line.quantity;
    END LOOP;

    head := ontab_ledger_head(tenant, buyer);

    INSERT INTO returns (business_id, id, order_id, amount, created_at)
    VALUES (tenant, p_return_id, p_order_id, return_amount, created);

    WITH written AS (
        INSERT INTO return_items (business_id, return_id, order_id, line_no, product_id, quantity, unit_price, line_total)
        SELECT tenant, p_return_id, p_order_id, l.ord, l.product_id, l.quantity, oi.unit_price, oi.unit_price * l.quantity
          FROM unnest(p_product_ids, p_quantities) WITH ORDINALITY AS l (product_id, quantity, ord)
          JOIN order_items oi
            ON oi.business_id = tenant AND oi.order_id = p_order_id AND oi.product_id = l.product_id
        RETURNING line_no, product_id, quantity, unit_price, line_total
    )
    SELECT jsonb_agg(jsonb_build_object('product_id', product_id, 'quantity', quantity,
                                        'unit_price', unit_price, 'line_total', line_total)
                     ORDER BY line_no)
      INTO items
      FROM written;

    UPDATE products p
       SET stock = p.stock + l.quantity
      FROM unnest(p_product_ids, p_quantities) AS l (product_id, quantity)
     WHERE p.business_id = tenant AND p.id = l.product_id;

    INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after,
                               order_id, return_id, created_at)
    VALUES (tenant, p_entry_id, buyer, head.seq + 1, 'return', -return_amount,
            head.balance - return_amount, p_order_id, p_return_id, created);

    RETURN jsonb_build_object('return', jsonb_build_object(
        'id', p_return_id, 'order_id', p_order_id, 'customer_id', buyer,
        'amount', return_amount::bigint, 'items', items, 'created_at', created));
END
$$;

CREATE FUNCTION ontab_adjust_stock(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    stock_now bigint;
    product_after products;
    created timestamptz := now();
BEGIN
    SELECT stock INTO stock_now FROM products WHERE business_id = tenant AND id = p_product_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'product', 'id', p_product_id);
    END IF;
    IF stock_now::numeric + p_delta < 0 THEN
        RETURN jsonb_build_object('error', 'insufficient_stock', 'product_id', p_product_id,
                                  'requested', -p_delta, 'available', stock_now);
    END IF;
    IF stock_now::numeric + p_delta > 9223372036854775807 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'delta',
                                  'message', 'stock would exceed the largest representable quantity');
    END IF;

    UPDATE products SET stock = stock + p_delta
     WHERE business_id = tenant AND id = p_product_id
    RETURNING * INTO product_after;

    INSERT INTO stock_adjustments (business_id, id, product_id, delta, reason, stock_after, created_at)
    VALUES (tenant, p_adjustment_id, p_product_id, p_delta, p_reason, product_after.stock, created);

    RETURN jsonb_build_object(
        'product', jsonb_build_object('id', product_after.id, 'name', product_after.name,
                                      'price', product_after.price, 'stock', product_after.stock,
                                      'created_at', product_after.created_at),
        'adjustment', jsonb_build_object('id', p_adjustment_id, 'product_id', p_product_id,
                                         'delta', p_delta, 'reason', p_reason,
                                         'stock_after', product_after.stock, 'created_at', created));
END
$$;

GRANT EXECUTE ON FUNCTION ontab_require_tenant(), ontab_ledger_head(uuid, uuid),
    ontab_purchase(uuid, uuid, uuid, uuid[], bigint[]), ontab_pay(uuid, uuid, bigint),
    ontab_return(uuid, uuid, uuid, uuid[], bigint[]), ontab_adjust_stock(uuid, uuid, bigint, text)
    TO ontab_app;
