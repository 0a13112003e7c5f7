-- Every read of the batch's customers and products by id probes the key.
--
-- 0026 made the batch's customer reads joins to one probe of the primary
-- key per id, on the ground that the planner cannot turn a LATERAL
-- subquery into a walk of the business. That holds for a subquery it must
-- keep (one with LIMIT, or a row lock, as the customer read has), not for
-- the read of `held`: a plain LATERAL subquery is pulled up into an
-- ordinary join, which the planner then plans as it likes. And the product
-- reads kept `business_id = tenant AND id = ANY (p_product_ids)`.
--
-- With a business the statistics underestimate (one newer than the
-- table's last ANALYZE is not among its most common values), each of them
-- walked the business: auto_explain on the uncontended benchmark with one
-- webhook endpoint at 64 clients (bench/run.sh, 1% of statements sampled)
-- showed the read of `held` as a hash join over a bitmap scan of all
-- 1,000 customers for 2 to 22 named, the planner expecting 9 (181 to
-- 225 µs a batch by pg_stat_statements, 24 µs a purchase at 16 clients),
-- and perf found 4% of PostgreSQL's samples comparing uuids against an
-- array under a scan in this function. With the estimate at 10 of 1,000
-- (n_distinct = -0.1), a batch of 22 orders read 1,088 customers' rows
-- and 3,088 products' rows: the product reads by the index on creation
-- time, every product compared with every id ("Rows Removed by Filter:
-- 956"), and the stock UPDATE as a nested loop that scanned its ids once
-- per product of the business. A business of 100,000 rows would be read
-- whole several times a batch.
--
-- Now every read joins the distinct ids to a probe of the key that the
-- planner must keep (LIMIT 1, the key being unique, or the row lock),
-- taking the locks in id order as before (the ids come sorted and a
-- nested loop locks each as it reaches it), and the UPDATE reaches each
-- product by the row version read under its lock: a TID scan per product.
-- The same batch reads 110 customers' and about 180 products' rows.
-- tests/api/batch.rs holds the batch to it. The rest of the function is
-- 0026's, with 0028's search_path (a CREATE OR REPLACE keeps only the
-- settings it states), and one more check: the UPDATE must write as many
-- products as were sold, or the batch fails.

CREATE OR REPLACE FUNCTION ontab_purchase_batch(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[],
                                     p_line_orders int[], p_product_ids uuid[], p_quantities bigint[])
RETURNS jsonb[]
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
SET random_page_cost = 1.1
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
