-- ontab_purchase, reordered so its refusals follow the contract's order
-- (validation_failed, then not_found, then insufficient_stock, then
-- credit_limit_exceeded) and so no purchase can reach a 500:
-- * a total beyond i64 is validation_failed even when the customer or
--   another product is unknown (0004 answered not_found first);
-- * a purchase that would take the customer's lifetime purchases
--   (purchases_to_date, 0005) beyond i64 is validation_failed, where 0004
--   let the ledger trigger raise a check violation (a 500). It is checked
--   after every other refusal, being a limit of representation.
-- Locks are taken in the same order as before (customer, then products by
-- id), and every read that decides happens after them.

CREATE OR REPLACE FUNCTION ontab_purchase(p_order_id uuid, p_entry_id uuid, p_customer_id uuid,
                                          p_product_ids uuid[], p_quantities bigint[])
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    credit_limit_now bigint;
    customer_found boolean;
    missing_product uuid;
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
    customer_found := FOUND;

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

    IF order_total > 9223372036854775807 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                  'message', 'order total exceeds the largest representable amount');
    END IF;
    IF NOT customer_found THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'customer', 'id', p_customer_id);
    END IF;

    -- The chain's head, read after the customer lock: one index probe for
    -- the balance and the lifetime purchases.
    SELECT c.seq, c.balance_after AS balance, c.purchases_to_date INTO head
      FROM credit_ledger c
     WHERE c.business_id = tenant AND c.customer_id = p_customer_id
     ORDER BY c.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        SELECT 0::bigint AS seq, 0::bigint AS balance, 0::bigint AS purchases_to_date INTO head;
    END IF;
    IF missing_product IS NOT NULL THEN
        RETURN jsonb_build_object('error', 'not_found', 'resource', 'product', 'id', missing_product);
    END IF;
    IF short_product IS NOT NULL THEN
        RETURN jsonb_build_object('error', 'insufficient_stock', 'product_id', short_product,
                                  'requested', short_requested, 'available', short_available);
    END IF;
    IF head.balance + order_total > credit_limit_now THEN
        RETURN jsonb_build_object('error', 'credit_limit_exceeded', 'credit_limit', credit_limit_now,
                                  'balance', head.balance, 'order_total', order_total::bigint);
    END IF;
    -- A limit of representation rather than of the request: checked last,
    -- so a refusal the client can act on is reported first.
    IF head.purchases_to_date::numeric + order_total > 9223372036854775807 THEN
        RETURN jsonb_build_object('error', 'validation_failed', 'field', 'items',
                                  'message', 'the customer''s lifetime purchases would exceed the largest representable amount');
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
