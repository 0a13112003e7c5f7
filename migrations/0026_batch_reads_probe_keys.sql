-- The batches' reads by id probe the primary key once per id.
--
-- Three statements found their rows as `business_id = … AND id = ANY (…)`
-- and were planned for a business of a handful of rows: a generic plan
-- (the purchase batch plans with force_generic_plan) estimates a
-- business's rows from the table's statistics, and the deliveries keep
-- none on business_id (0012). Each chose to read every row of the
-- business and compare it with every id of the batch. With auto_explain
-- on the uncontended benchmark with one webhook endpoint (64 clients, a
-- business of 1,000 customers and ~8,000 deliveries):
--
--   * the batch's customer read (FOR UPDATE) and its read of what holds
--     reserve: 1,000 customers visited for 19 to 37, 2.4 to 3.4 ms each,
--     by the index on (business_id, created_at, id), whose estimate was
--     5 rows;
--   * the recorder's `locked` (ontab_webhook_attempted_batch): 7,820
--     deliveries visited for 54, 4.4 of the statement's 4.7 ms; it grows
--     with the deliveries a business keeps.
--
-- Each now joins the ids to one probe of the primary key per id (a
-- LATERAL subquery, which the planner cannot turn into a walk of the
-- business), so what it reads is the batch, however large the business.
-- The recorder's UPDATE, which found its rows again by `d.id = ANY`, then
-- took up the walk (a hash join: its input, now estimated at its true
-- size, looked dearer to probe than the business's 1/200 of the table;
-- 2.4 ms a call). It now finds them by the row versions `locked` locked
-- (ctid, stable while this statement holds their locks): a TID scan,
-- which the planner prices by the list's length, not by the business.
-- The locks are taken in id order as before: the ids come sorted, and a
-- nested loop locks each row as it reaches it. (The server's own lock of
-- a batch's customers, before this function, had the same plan and
-- changed with this migration: src/db/purchase.rs.) The rest of both functions
-- is 0022's (with 0023's random_page_cost, which a CREATE OR REPLACE keeps
-- only when it says it again) and 0025's.

CREATE OR REPLACE FUNCTION ontab_purchase_batch(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[],
                                     p_line_orders int[], p_product_ids uuid[], p_quantities bigint[])
RETURNS jsonb[]
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public
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
                     WHERE c.business_id = tenant AND c.id = k.id) c ON true;
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
                          FROM products p
                         WHERE p.business_id = tenant AND p.id = ANY (p_product_ids)
                         ORDER BY p.id
                           FOR KEY SHARE) shared;
            ELSE
                PERFORM 1
                   FROM (SELECT p.id FROM products p
                          WHERE p.business_id = tenant AND p.id = ANY (p_product_ids)
                          ORDER BY p.id
                            FOR NO KEY UPDATE) locked;
                PERFORM ontab_release_expired(tenant, p_product_ids);
                SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}'), coalesce(array_agg(p.price ORDER BY p.id), '{}'),
                       coalesce(array_agg(p.stock - p.reserved ORDER BY p.id), '{}')
                  INTO p_ids, p_price, p_stock
                  FROM products p
                 WHERE p.business_id = tenant AND p.id = ANY (p_product_ids);
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
                   FROM (SELECT p.id FROM products p
                          WHERE p.business_id = tenant AND p.id = ANY (p_product_ids)
                          ORDER BY p.id
                            FOR NO KEY UPDATE) locked;
                PERFORM ontab_release_expired(tenant, p_product_ids);
                SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}'), coalesce(array_agg(p.price ORDER BY p.id), '{}'),
                       coalesce(array_agg(p.stock - p.reserved ORDER BY p.id), '{}')
                  INTO l_ids, l_price, l_stock
                  FROM products p
                 WHERE p.business_id = tenant AND p.id = ANY (p_product_ids);
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
                -- One product per element of p_ids, all locked above.
                UPDATE products p SET stock = p.stock - s.sold
                  FROM unnest(p_ids, p_sold) AS s (id, sold)
                 WHERE p.business_id = tenant AND p.id = s.id AND s.sold > 0;
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

CREATE OR REPLACE FUNCTION ontab_webhook_attempted_batch(
    p_lease uuid, p_lease_ms int, p_schedule bigint[],
    p_deliveries uuid[], p_status int[], p_error text[], p_duration_ms int[],
    p_attempted_at timestamptz[], p_continue boolean[]
) RETURNS TABLE (delivery_id uuid, outcome text, next_delivery_id uuid)
LANGUAGE plpgsql
SET random_page_cost = 1.1
AS $$
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
$$;
