-- The money- and stock-moving use cases, one function each, so that a
-- purchase is one round trip while its locks are held.
--
-- Conventions shared by all of them:
-- * They are the only way to move money or stock: they run as ontab_writer
--   (SECURITY DEFINER, with a fixed search_path), which may write orders,
--   returns, their lines, ledger entries, adjustments and stock, while the
--   callers (ontab_app) may not (0003). Row level security applies to
--   ontab_writer as to anyone, with the caller's tenant (`ontab.business_id`),
--   so a function writes only the current tenant's rows; and every guard of
--   0002 fires on what they write.
-- * Lock order is always customer first, then products by id. Two
--   transactions can therefore never wait on each other in a cycle.
--   Products are locked FOR NO KEY UPDATE (what an UPDATE of their stock
--   takes anyway), which does not wait for the KEY SHARE locks that lines
--   referencing them take (see ontab_purchase_batch).
-- * In READ COMMITTED a statement that waited for a row lock keeps its old
--   snapshot for everything else it reads. So the rows that matter (latest
--   ledger entry, stock, prices) are read by statements that run after the
--   locking statement; each PL/pgSQL statement takes a fresh snapshot.
-- * An expected refusal (not found, out of stock, over the limit) is
--   returned as {"error": code, ...facts} before anything is written, not
--   raised, so the caller's transaction stays usable (it records the
--   outcome for Idempotency-Key replays). Anything raised is a bug or a
--   guard firing, and aborts the transaction.
-- * Each product is reached through its primary key (LATERAL lookups fenced
--   with LIMIT 1 so the planner cannot flatten them back into a join, one
--   lock or UPDATE per product), whatever the plan cache decides. Set-based
--   statements over a request's lines, planned generically and without
--   statistics on a fresh database, were planned as a scan of every product
--   of the business: on a business with 1,000 products a purchase cost
--   1.3 ms of database time instead of 0.3 ms.
-- * plan_cache_mode = force_generic_plan: every statement of the use cases
--   (and of the triggers they fire) is a lookup by key, so one plan serves
--   every call. Under the default, PostgreSQL re-plans some of them at each
--   call (row level security and the inlined ontab_tenant() make a custom
--   plan look worth it), which cost about half of a purchase's time.

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

-- Newest entry of a customer's chain, (0, 0, -infinity) for an empty one:
-- an index probe on (business_id, customer_id, seq), however long the
-- history.
CREATE FUNCTION ontab_ledger_head(p_business uuid, p_customer uuid,
                                  OUT seq bigint, OUT balance bigint, OUT created timestamptz)
LANGUAGE plpgsql STABLE AS $$
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

-- A refusal for the state of the customer's account, or NULL: closed before
-- on hold, as the contract orders them. `buying` says whether the movement
-- is a purchase (refused on hold) or a credit (allowed on hold).
CREATE FUNCTION ontab_account_refusal(p_customer_id uuid, p_status text, p_buying boolean)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_status = 'closed' THEN
            jsonb_build_object('error', 'customer_closed', 'customer_id', p_customer_id)
        WHEN p_status = 'on_hold' AND p_buying THEN
            jsonb_build_object('error', 'customer_on_hold', 'customer_id', p_customer_id)
    END
$$;

-- Holds past their expiry reserve nothing, whether or not their expiry has
-- been recorded: a decision about these products (whose rows the caller has
-- locked) first releases what expired holds still reserve of them, so the
-- stock it decides on, and the CHECK reserved <= stock, count only live
-- holds. One range of pending_hold_items_by_product per product, usually
-- empty. Customers' credit is released likewise (below); the holds
-- themselves end when the sweep (or closing their customer) records their
-- expiry.
CREATE FUNCTION ontab_release_expired(p_business uuid, p_product_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM pending_hold_items
     WHERE business_id = p_business AND product_id = ANY (p_product_ids) AND expires_at <= now()
$$;

-- The same for customers' credit (whose rows the caller has locked): a
-- decision that counts a customer's expired holds out releases their
-- credit, so that no transaction whose clock is still before the expiry
-- (it began earlier) can capture what this one treated as free. After it,
-- customers.held is exactly what live holds reserve.
CREATE FUNCTION ontab_release_expired_credit(p_business uuid, p_customer_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM pending_holds
     WHERE business_id = p_business AND customer_id = ANY (p_customer_ids) AND expires_at <= now()
$$;

-- Refusals follow the contract's order: validation_failed, then not_found,
-- then customer_closed, customer_on_hold, then insufficient_stock, then
-- credit_limit_exceeded. So a total beyond 2^53 - 1 is validation_failed
-- even when the customer or another product is unknown, and no purchase
-- can reach a 500: one that would take the customer's lifetime purchases
-- (purchases_to_date) beyond i64 is validation_failed too, checked after
-- every other refusal, being a limit of representation (otherwise the
-- chain trigger would raise).
--
-- The order is dated no earlier than the customer's last ledger entry (the
-- chain is in time order, so statements chain), and falls due after the
-- customer's payment terms as they are now, under its lock.
--
-- Pending holds count: a product sells only what it has beyond its
-- reserved units, and a customer buys only within its limit minus its
-- balance and what its live holds reserve (`held`, reported in the
-- refusal).
CREATE FUNCTION ontab_purchase(p_order_id uuid, p_entry_id uuid, p_customer_id uuid,
                               p_product_ids uuid[], p_quantities bigint[])
RETURNS jsonb
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

    RETURN jsonb_build_object('order', jsonb_build_object(
        'id', p_order_id, 'customer_id', p_customer_id, 'total', order_total::bigint,
        'created_at', created, 'due_at', due, 'hold_id', NULL, 'items', items));
END
$$;

-- A batch of purchases as one set-based call (group commit).
--
-- Calling ontab_purchase once per order cost about 1 ms of database time per
-- order, nearly all of it fixed per-statement work (executor start-up and
-- shutdown, constraint expressions rebuilt for every INSERT, trigger and
-- foreign-key set-up) over some twenty statements, and under a flash sale
-- all of it ran while the hot product's row lock was held. This function
-- takes the orders of a batch in arrival order, decides each one in memory
-- against the state the orders before it left, and then writes every
-- accepted order with one statement per table: one INSERT of all orders,
-- one of all lines, one of all ledger entries, and one UPDATE per product
-- sold.
--
-- Each order gets exactly the answer ontab_purchase would have given it had
-- the orders run one after another in the same order: same refusals, checked
-- in the same order, with the same facts. A refused order writes
-- nothing. Every guard of 0002 still fires on every row written (ledger
-- chain and credit limit per entry, stock >= 0, order completeness, foreign
-- keys), so a bug here raises instead of storing something wrong, and the
-- whole batch rolls back.
--
-- Arguments: one element per order in p_order_ids, p_entry_ids and
-- p_customer_ids; one element per line in p_line_orders (the 1-based index of
-- the order the line belongs to: lines grouped by order, orders ascending,
-- each order's lines merged one per product, in request order),
-- p_product_ids and p_quantities. Returns one answer per order, shaped as
-- ontab_purchase's.
--
-- Products are locked last, so that two batches of one hot product overlap
-- (with the product locked from a batch's first statement to its commit,
-- they ran strictly one after another while the other core sat idle). A
-- batch locks its customers (in id order) and reads their chain heads,
-- reads its products under a KEY SHARE lock (which only keeps them from
-- being deleted or re-keyed, and waits for no other batch), decides every
-- order, writes the accepted orders, lines and ledger entries, runs the
-- orders' completeness checks (otherwise deferred to commit), and only then
-- locks its products (in id order) and checks that what it decided on still
-- holds: the same products at the same prices, with stock for everything it
-- sold. Then its answers are exactly those of running its orders one by one
-- at that moment, and it subtracts the stock. If anything changed in
-- between (a price, a concurrent sale that left too little stock, a product
-- created), the attempt is rolled back to a savepoint and the batch is
-- decided again with its products locked first. A refusal for stock reports
-- the stock available, which only a locked read can know: a batch with such
-- a refusal goes to the locked attempt straight away, before writing
-- anything.
--
-- Products are locked FOR NO KEY UPDATE (the strength an UPDATE of their
-- stock takes anyway), not FOR UPDATE: the batch's own order lines hold a
-- KEY SHARE lock on each product they reference (the foreign key's check),
-- as do the lines of another batch written meanwhile, and FOR UPDATE would
-- wait for those, each batch for the other, a deadlock. NO KEY UPDATE does
-- not conflict with KEY SHARE, only with itself and stronger locks, so two
-- batches still take the product one after the other.
--
-- Lock order: customers, then products, each in id order (the KEY SHARE
-- locks, then the NO KEY UPDATE ones), as everyone else takes them, so no
-- cycle can form. A batch that writes nothing (every order refused)
-- takes no product lock beyond KEY SHARE: its answers hold as of the moment
-- it read the products, its customers being locked already.
CREATE FUNCTION ontab_purchase_batch(p_order_ids uuid[], p_entry_ids uuid[], p_customer_ids uuid[],
                                     p_line_orders int[], p_product_ids uuid[], p_quantities bigint[])
RETURNS jsonb[]
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
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
      FROM (SELECT c.id, c.credit_limit, c.status, c.payment_terms_days FROM customers c
             WHERE c.business_id = tenant AND c.id = ANY (p_customer_ids)
             ORDER BY c.id
               FOR UPDATE) locked;
    -- What live holds reserve of each customer's credit, read under its
    -- lock (no hold of theirs can start meanwhile), expired ones released.
    PERFORM ontab_release_expired_credit(tenant, c_ids);
    SELECT coalesce(array_agg(c.held ORDER BY c.id), '{}')
      INTO c_held
      FROM customers c
     WHERE c.business_id = tenant AND c.id = ANY (c_ids);
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

            FOR k IN 1..cardinality(p_ids) LOOP
                IF p_sold[k] > 0 THEN
                    UPDATE products SET stock = stock - p_sold[k]
                     WHERE business_id = tenant AND id = p_ids[k];
                END IF;
            END LOOP;

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

-- A payment or a write-off (bad debt forgiven): a credit to the customer's
-- ledger, never more than the balance, allowed while the customer is on
-- hold and refused once it is closed. Both settle the oldest purchases
-- first (FIFO, see the overdue report): they lower the balance, and what a
-- purchase still owes is read from the credits after it. Not callable by
-- ontab_app: it runs inside ontab_pay and ontab_write_off, as ontab_writer.
CREATE FUNCTION ontab_credit(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_kind text, p_reason text)
RETURNS jsonb
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
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

CREATE FUNCTION ontab_pay(p_entry_id uuid, p_customer_id uuid, p_amount bigint)
RETURNS jsonb
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT ontab_credit(p_entry_id, p_customer_id, p_amount, 'payment', NULL)
$$;

CREATE FUNCTION ontab_write_off(p_entry_id uuid, p_customer_id uuid, p_amount bigint, p_reason text)
RETURNS jsonb
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT ontab_credit(p_entry_id, p_customer_id, p_amount, 'write_off', p_reason)
$$;

CREATE FUNCTION ontab_return(p_return_id uuid, p_entry_id uuid, p_order_id uuid,
                             p_product_ids uuid[], p_quantities bigint[])
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public
SET plan_cache_mode = force_generic_plan
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

-- Holds: authorize now, capture later.
--
-- A hold makes the decisions of a purchase (same checks, refusals and
-- precedence, on the same locks) and, instead of selling, reserves: its
-- lines at today's prices in hold_items, and what it keeps from others in
-- pending_holds (the customer's credit) and pending_hold_items (each
-- product's units), whose triggers keep customers.held and
-- products.reserved their sums (0002). Purchases and other holds then sell
-- only stock - reserved and lend only limit - balance - held.
--
-- Pessimistic, as TigerBeetle's pending transfers: everything a capture can
-- take is reserved when the hold is made, so a capture never breaks an
-- invariant (the limit lowered since, or other sales, cannot refuse it) and
-- needs no stock or credit check of its own beyond the hold's bounds.
--
-- Time is PostgreSQL's: a hold is pending until now() of the deciding
-- transaction reaches expires_at, and from then on it reserves nothing,
-- recorded or not. Every decision counts expired reservations out (and, on
-- the customers and products it has locked, releases them:
-- ontab_release_expired_credit, ontab_release_expired); the
-- sweep (src/app/holds.rs) records the expiry of each hold
-- (ontab_expire_hold) soon after.

-- A hold as the API shows it, its status by the clock of the transaction
-- asking: a hold past its expiry is expired whether or not the expiry has
-- been recorded.
CREATE FUNCTION ontab_hold_view(p_business uuid, p_hold uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', h.id, 'customer_id', h.customer_id,
        'status', coalesce(e.outcome, CASE WHEN h.expires_at <= now() THEN 'expired' ELSE 'pending' END),
        'items', (SELECT jsonb_agg(jsonb_build_object('product_id', i.product_id, 'quantity', i.quantity,
                                                      'unit_price', i.unit_price, 'line_total', i.line_total)
                                   ORDER BY i.line_no)
                    FROM hold_items i WHERE i.business_id = h.business_id AND i.hold_id = h.id),
        'total', h.total, 'created_at', h.created_at, 'expires_at', h.expires_at,
        'ended_at', CASE WHEN e.outcome IN ('captured', 'voided') THEN e.ended_at
                         WHEN h.expires_at <= now() THEN h.expires_at END,
        'order_id', e.order_id)
      FROM holds h
      LEFT JOIN hold_endings e ON e.business_id = h.business_id AND e.hold_id = h.id
     WHERE h.business_id = p_business AND h.id = p_hold
$$;

-- hold_not_pending with the hold's status, or NULL if it is pending: not
-- ended, not past its expiry, and still reserving all it reserved (a
-- decision whose clock had passed the expiry may have released a line
-- before this transaction's own clock got there).
CREATE FUNCTION ontab_hold_refusal(p_business uuid, p_hold uuid, p_expires_at timestamptz) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
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

-- Records how a hold ended and releases what it still reserves. The caller
-- holds the customer's and the hold's products' locks.
CREATE FUNCTION ontab_end_hold(p_business uuid, p_hold uuid, p_outcome text, p_order uuid) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO hold_endings (business_id, hold_id, outcome, order_id) VALUES (p_business, p_hold, p_outcome, p_order);
    DELETE FROM pending_hold_items WHERE business_id = p_business AND hold_id = p_hold;
    DELETE FROM pending_holds WHERE business_id = p_business AND hold_id = p_hold;
$$;

-- Locks a hold's customer, then its products in id order (the order every
-- writer takes them in), and returns the hold's customer and expiry; no row
-- if this business has no such hold.
CREATE FUNCTION ontab_lock_hold(p_business uuid, p_hold uuid,
                                OUT customer_id uuid, OUT expires_at timestamptz, OUT status text,
                                OUT payment_terms_days int)
LANGUAGE plpgsql AS $$
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

-- A hold: the purchase's refusals in the purchase's order, then the
-- reservation, expiring p_expires_in seconds from now().
CREATE FUNCTION ontab_hold(p_hold_id uuid, p_customer_id uuid, p_product_ids uuid[], p_quantities bigint[],
                           p_expires_in int)
RETURNS jsonb
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

-- A capture: an ordinary order at the hold's prices, of all it holds
-- (p_product_ids NULL) or of some of it, dated and due as a purchase made
-- now; the rest is released. Refusals: not_found, the account's
-- (customer_closed, customer_on_hold), hold_not_pending, then
-- capture_exceeds_hold (a product the hold does not hold, known to the
-- business or not, holds 0).
CREATE FUNCTION ontab_capture(p_hold_id uuid, p_order_id uuid, p_entry_id uuid,
                              p_product_ids uuid[], p_quantities bigint[])
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public
SET plan_cache_mode = force_generic_plan
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

-- A void releases all the hold reserves. Allowed whatever the account's
-- status: it only gives back.
CREATE FUNCTION ontab_void(p_hold_id uuid)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public
SET plan_cache_mode = force_generic_plan
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

-- Records the expiry of a hold past its expires_at (the sweep's work, one
-- hold per transaction): releases what it still reserves. hold_not_pending
-- when there is nothing to record (ended already, or not expired yet:
-- status "pending").
CREATE FUNCTION ontab_expire_hold(p_hold_id uuid)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public
SET plan_cache_mode = force_generic_plan
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

CREATE FUNCTION ontab_adjust_stock(p_adjustment_id uuid, p_product_id uuid, p_delta bigint, p_reason text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public
SET plan_cache_mode = force_generic_plan
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

-- A change of a customer's name, limit, status or terms (null: unchanged),
-- with the refusals of its account rules as values: a closed customer is
-- never reopened (customer_closed), and is closed only from a zero balance
-- (balance_outstanding). The guards of 0002 hold the same rules against any
-- other writer; this function gives them their answers. It runs as the
-- caller (ontab_app may update customers), under the customer's row lock,
-- which orders it with every ledger entry.
CREATE FUNCTION ontab_update_customer(p_customer_id uuid, p_name text, p_credit_limit bigint,
                                      p_status text, p_payment_terms_days int)
RETURNS jsonb
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
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

-- Handed to ontab_writer (which needs CREATE on the schema for the
-- hand-over, see 0003), callable by ontab_app and nobody else.
GRANT CREATE ON SCHEMA public TO ontab_writer;
ALTER FUNCTION ontab_purchase(uuid, uuid, uuid, uuid[], bigint[]) OWNER TO ontab_writer;
ALTER FUNCTION ontab_purchase_batch(uuid[], uuid[], uuid[], int[], uuid[], bigint[]) OWNER TO ontab_writer;
ALTER FUNCTION ontab_pay(uuid, uuid, bigint) OWNER TO ontab_writer;
ALTER FUNCTION ontab_write_off(uuid, uuid, bigint, text) OWNER TO ontab_writer;
ALTER FUNCTION ontab_credit(uuid, uuid, bigint, text, text) OWNER TO ontab_writer;
ALTER FUNCTION ontab_return(uuid, uuid, uuid, uuid[], bigint[]) OWNER TO ontab_writer;
ALTER FUNCTION ontab_adjust_stock(uuid, uuid, bigint, text) OWNER TO ontab_writer;
ALTER FUNCTION ontab_hold(uuid, uuid, uuid[], bigint[], int) OWNER TO ontab_writer;
ALTER FUNCTION ontab_capture(uuid, uuid, uuid, uuid[], bigint[]) OWNER TO ontab_writer;
ALTER FUNCTION ontab_void(uuid) OWNER TO ontab_writer;
ALTER FUNCTION ontab_expire_hold(uuid) OWNER TO ontab_writer;
ALTER FUNCTION ontab_end_hold(uuid, uuid, text, uuid) OWNER TO ontab_writer;
REVOKE CREATE ON SCHEMA public FROM ontab_writer;

REVOKE ALL ON FUNCTION
    ontab_purchase(uuid, uuid, uuid, uuid[], bigint[]),
    ontab_purchase_batch(uuid[], uuid[], uuid[], int[], uuid[], bigint[]),
    ontab_pay(uuid, uuid, bigint), ontab_write_off(uuid, uuid, bigint, text),
    ontab_credit(uuid, uuid, bigint, text, text),
    ontab_return(uuid, uuid, uuid, uuid[], bigint[]),
    ontab_adjust_stock(uuid, uuid, bigint, text),
    ontab_update_customer(uuid, text, bigint, text, int),
    ontab_hold(uuid, uuid, uuid[], bigint[], int),
    ontab_capture(uuid, uuid, uuid, uuid[], bigint[]),
    ontab_void(uuid), ontab_expire_hold(uuid),
    ontab_end_hold(uuid, uuid, text, uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    ontab_purchase(uuid, uuid, uuid, uuid[], bigint[]),
    ontab_purchase_batch(uuid[], uuid[], uuid[], int[], uuid[], bigint[]),
    ontab_pay(uuid, uuid, bigint), ontab_write_off(uuid, uuid, bigint, text),
    ontab_return(uuid, uuid, uuid, uuid[], bigint[]),
    ontab_adjust_stock(uuid, uuid, bigint, text),
    ontab_update_customer(uuid, text, bigint, text, int),
    ontab_hold(uuid, uuid, uuid[], bigint[], int),
    ontab_capture(uuid, uuid, uuid, uuid[], bigint[]),
    ontab_void(uuid), ontab_expire_hold(uuid)
    TO ontab_app;
-- The helpers run inside the functions, as ontab_writer (ontab_credit only
-- there: a credit is a payment or a write-off, each with its own entry).
GRANT EXECUTE ON FUNCTION ontab_require_tenant(), ontab_ledger_head(uuid, uuid),
    ontab_account_refusal(uuid, text, boolean)
    TO ontab_app, ontab_writer;
