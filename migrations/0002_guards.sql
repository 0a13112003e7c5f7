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
                             'credit_ledger', 'stock_adjustments', 'customer_changes']
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
    SELECT credit_limit, status, payment_terms_days INTO customer
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
        IF NEW.balance_after > customer.credit_limit THEN
            RAISE EXCEPTION 'credit limit exceeded: balance % above limit %', NEW.balance_after, customer.credit_limit
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
    lines_total numeric;
    ledger_amount bigint;
    ledger_due timestamptz;
BEGIN
    SELECT o.total, o.due_at, li.total, l.amount, l.due_at
      INTO order_total, order_due, lines_total, ledger_amount, ledger_due
      FROM (SELECT 1) AS one
      LEFT JOIN orders o ON o.business_id = NEW.business_id AND o.id = NEW.order_id
      LEFT JOIN LATERAL (SELECT sum(i.line_total) AS total FROM order_items i
                          WHERE i.business_id = NEW.business_id AND i.order_id = NEW.order_id) li ON true
      LEFT JOIN credit_ledger l
             ON l.business_id = NEW.business_id AND l.order_id = NEW.order_id AND l.kind = 'purchase';
    IF order_total IS NULL OR lines_total IS DISTINCT FROM order_total
       OR ledger_amount IS DISTINCT FROM order_total OR ledger_due IS DISTINCT FROM order_due THEN
        RAISE EXCEPTION 'order % is inconsistent: total %, lines %, ledger %, due at % but its entry at %',
                        NEW.order_id, order_total, lines_total, ledger_amount, order_due, ledger_due
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
