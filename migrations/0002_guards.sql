-- Database guards: whoever writes, these hold.
--
-- * History is immutable: orders, order_items, returns, return_items,
--   credit_ledger, stock_adjustments and customer_changes refuse UPDATE,
--   DELETE and TRUNCATE for every role, the owner included (by trigger).
-- * The ledger chain: an entry must continue its customer's chain exactly
--   (seq = previous seq + 1, balance_after = previous balance_after + amount,
--   created_at never before the previous entry's), a purchase may not take
--   the balance above the credit limit, must be made by an active customer
--   and fall due after exactly the customer's payment terms, no entry at all
--   may be made for a closed customer (all read under a lock that orders
--   the entry with changes of the customer), and a payment or a write-off
--   may not take the balance below zero. purchases_to_date is derived here,
--   whatever the writer sent.
-- * A customer is closed only from a zero balance, and closed is final.
-- * An order's total equals the sum of its lines and its ledger entry, and a
--   return's amount the sum of its lines and its ledger credit: checked at
--   commit, when all three exist, and again for every line added later.
-- * A return never exceeds what the order bought minus earlier returns, and
--   carries the order's unit price.
-- * A product starts at its initial_stock, which, like its business_id and
--   id, never changes.
-- * Every credit limit, status and payment terms a customer is given are
--   recorded in customer_changes, with the ledger position from which they
--   apply and who made the change.
-- * Holds: a product's reserved and a customer's held are the sums of what
--   pending holds reserve, kept by triggers on the pending tables and by
--   nothing else; reserved never exceeds the stock (CHECK), held never
--   takes the balance past the limit when it grows, and a purchase counts
--   it; a reservation is released only with its hold's ending or after its
--   expiry; a hold ends once, captured or voided only before it expires,
--   expired only after; a capture's order is at the hold's prices, within
--   what it held.

CREATE FUNCTION ontab_refuse_history_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only history: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['orders', 'order_items', 'returns', 'return_items',
                             'credit_ledger', 'stock_adjustments', 'customer_changes',
                             'holds', 'hold_items', 'hold_endings']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION ontab_refuse_history_change()',
                       t || '_immutable', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION ontab_refuse_history_change()',
                       t || '_no_truncate', t);
    END LOOP;
END
$$;

-- The previous entry is read in the trigger's own statement, after the
-- inserting transaction holds whatever locks it took, so it sees the newest
-- committed chain. Two concurrent appends of the same seq collide on the
-- unique key; an append that skips ahead finds no predecessor and fails.
-- The same row gives purchases_to_date, so no second lookup is needed.
CREATE FUNCTION ontab_check_ledger_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER credit_ledger_chain BEFORE INSERT ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION ontab_check_ledger_chain();

-- Completeness is deferred to commit: an order, its lines and its ledger
-- entry are written by separate statements, and only together must they
-- agree. Each line checks, against the order's stored total, the sum of all
-- the order's lines and its ledger entry. That is enough for every order
-- with a line, and for every line added later, in another transaction, to
-- an order already committed: lines can only be added, never changed or
-- removed, each added line fires its own check, and the ledger entry can
-- neither be added twice (credit_ledger_one_per_order) nor changed. What
-- only the order's own check can catch is an order committed without any
-- line, so that is all it checks. Both fire at commit (DEFERRABLE INITIALLY
-- DEFERRED), or at once under SET CONSTRAINTS ... IMMEDIATE, and both
-- report as orders_complete.
CREATE FUNCTION ontab_check_order_complete() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE CONSTRAINT TRIGGER orders_complete AFTER INSERT ON orders
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ontab_check_order_complete();

-- The four facts in one statement: this runs at the commit of every
-- purchase, once per line. The order's due date must be its ledger
-- entry's, which the chain trigger checked against the customer's terms.
CREATE FUNCTION ontab_check_order_of_line() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE CONSTRAINT TRIGGER order_items_complete AFTER INSERT ON order_items
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ontab_check_order_of_line();

-- Likewise a return's amount must equal its lines and its ledger credit:
-- checked for the return, and for each of its lines against the return's
-- stored amount (so a line added later breaks the sum).
CREATE FUNCTION ontab_check_return_complete() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE CONSTRAINT TRIGGER returns_complete AFTER INSERT ON returns
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ontab_check_return_complete();

CREATE FUNCTION ontab_check_return_of_line() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE CONSTRAINT TRIGGER return_items_complete AFTER INSERT ON return_items
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ontab_check_return_of_line();

-- A return line may not exceed the order line minus earlier returns, and must
-- carry the order's unit price. Concurrent returns of one order are
-- serialized by a transaction-scoped advisory lock on the order (a row lock
-- would need UPDATE privilege on history, which ontab_app does not have);
-- the sum below is a later statement, so it sees every committed return.
CREATE FUNCTION ontab_check_return_line() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER return_items_within_purchase BEFORE INSERT ON return_items
    FOR EACH ROW EXECUTE FUNCTION ontab_check_return_line();

-- initial_stock is part of the reconciliation record; it never changes.
CREATE FUNCTION ontab_keep_initial_stock() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER products_keep_initial_stock BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION ontab_keep_initial_stock();

-- A product starts at its initial stock, so the reconciliation holds from
-- its first row; every later change of stock comes with its reason row
-- (order line, return line, adjustment), written by the use cases (0004).
-- AFTER the row is stored, so that the CHECKs on stock speak first.
CREATE FUNCTION ontab_refuse_unexplained_stock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a new product''s stock % differs from its initial_stock %', NEW.stock, NEW.initial_stock
        USING ERRCODE = 'check_violation', CONSTRAINT = 'products_start_at_initial_stock';
END
$$;

CREATE TRIGGER products_start_at_initial_stock AFTER INSERT ON products
    FOR EACH ROW WHEN (NEW.stock IS DISTINCT FROM NEW.initial_stock)
    EXECUTE FUNCTION ontab_refuse_unexplained_stock();

-- A new customer's payment terms are its business's unless it is given its
-- own, whoever creates it.
CREATE FUNCTION ontab_default_customer_terms() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT b.payment_terms_days INTO NEW.payment_terms_days
      FROM businesses b
     WHERE b.id = NEW.business_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER customers_default_terms BEFORE INSERT ON customers
    FOR EACH ROW WHEN (NEW.payment_terms_days IS NULL)
    EXECUTE FUNCTION ontab_default_customer_terms();

-- A customer is closed only when it owes nothing and is owed nothing, and
-- closed is final. The UPDATE that fires this holds the customer's row lock,
-- the lock every ledger append takes first, and this statement's snapshot
-- is taken after it was won: the balance read is the newest.
CREATE FUNCTION ontab_check_customer_status() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER customers_status_rules BEFORE UPDATE OF status ON customers
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION ontab_check_customer_status();

-- A customer's limit, status and terms are recorded when it is created and
-- whenever one of them changes, while its row is locked (by the INSERT or
-- UPDATE that fires this), the lock every ledger append takes first. In
-- READ COMMITTED each statement here takes a fresh snapshot after the row
-- lock was won: it sees every ledger entry appended under that lock before,
-- so after_seq is exact. Who changed it is the transaction's
-- `ontab.actor` (the API key acting, set with the tenant). It runs as
-- ontab_recorder (SECURITY DEFINER, owner set in 0003), the one role that
-- may append to customer_changes: the writer of customers cannot write
-- history of its own making. Row level security still applies to the
-- recorder, so it records only for the tenant of the transaction.
CREATE FUNCTION ontab_record_customer_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
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

CREATE TRIGGER customers_record_creation AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION ontab_record_customer_change();
CREATE TRIGGER customers_record_change AFTER UPDATE OF credit_limit, status, payment_terms_days ON customers
    FOR EACH ROW WHEN ((OLD.credit_limit, OLD.status, OLD.payment_terms_days)
                       IS DISTINCT FROM (NEW.credit_limit, NEW.status, NEW.payment_terms_days))
    EXECUTE FUNCTION ontab_record_customer_change();

-- The credit a customer's expired holds still count in its held (until
-- something records their expiry): one range of pending_holds_by_customer.
-- STABLE, so one call per statement sees one now().
CREATE FUNCTION ontab_expired_hold_credit(p_business uuid, p_customer uuid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(p.total), 0)::bigint
      FROM pending_holds p
     WHERE p.business_id = p_business AND p.customer_id = p_customer AND p.expires_at <= now()
$$;

-- The units of a product its expired holds still count in its reserved
-- (until a decision about it or the hold's ending releases them).
CREATE FUNCTION ontab_expired_reserve(p_business uuid, p_product uuid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(i.quantity), 0)::bigint
      FROM pending_hold_items i
     WHERE i.business_id = p_business AND i.product_id = p_product AND i.expires_at <= now()
$$;

-- What a pending hold reserves lives in pending_holds / pending_hold_items;
-- these keep customers.held and products.reserved their sums, whoever
-- inserts or deletes. They run as ontab_reserver (owner set in 0003), the
-- one role that may write those two columns.
CREATE FUNCTION ontab_keep_held() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE customers SET held = held + NEW.total WHERE business_id = NEW.business_id AND id = NEW.customer_id;
    ELSE
        UPDATE customers SET held = held - OLD.total WHERE business_id = OLD.business_id AND id = OLD.customer_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER pending_holds_keep_held AFTER INSERT OR DELETE ON pending_holds
    FOR EACH ROW EXECUTE FUNCTION ontab_keep_held();

CREATE FUNCTION ontab_keep_reserved() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
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

CREATE TRIGGER pending_hold_items_keep_reserved AFTER INSERT OR DELETE ON pending_hold_items
    FOR EACH ROW EXECUTE FUNCTION ontab_keep_reserved();

-- A reservation is made with its hold (the hold's own amounts, for a hold
-- not yet ended) and released only when the hold ends or expires; it is
-- never edited.
CREATE FUNCTION ontab_check_release(p_business uuid, p_hold uuid, p_expires_at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_expires_at > now()
       AND NOT EXISTS (SELECT 1 FROM hold_endings e WHERE e.business_id = p_business AND e.hold_id = p_hold) THEN
        RAISE EXCEPTION 'hold % is pending until %: its reservation is released only when it ends',
                        p_hold, p_expires_at
            USING ERRCODE = 'check_violation', CONSTRAINT = 'holds_released_when_ended';
    END IF;
END
$$;

CREATE FUNCTION ontab_check_pending_hold() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER pending_holds_checked BEFORE INSERT OR UPDATE OR DELETE ON pending_holds
    FOR EACH ROW EXECUTE FUNCTION ontab_check_pending_hold();

CREATE FUNCTION ontab_check_pending_hold_item() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER pending_hold_items_checked BEFORE INSERT OR UPDATE OR DELETE ON pending_hold_items
    FOR EACH ROW EXECUTE FUNCTION ontab_check_pending_hold_item();

-- Credit reserved only within the limit, by an active customer: checked
-- whenever held grows (it shrinks freely), under the customer's row lock,
-- against the newest balance.
CREATE FUNCTION ontab_check_held() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER customers_held_within_limit BEFORE UPDATE OF held ON customers
    FOR EACH ROW WHEN (NEW.held > OLD.held)
    EXECUTE FUNCTION ontab_check_held();

-- A hold ends once (the primary key), captured or voided only before it
-- expires and expired only from then on, by the time of the deciding
-- transaction; a capture names the order that captured it.
CREATE FUNCTION ontab_check_hold_ending() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER hold_endings_checked BEFORE INSERT ON hold_endings
    FOR EACH ROW EXECUTE FUNCTION ontab_check_hold_ending();
