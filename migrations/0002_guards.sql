-- Database guards: whoever writes, these hold.
--
-- * History is immutable: orders, order_items, returns, return_items,
--   credit_ledger and stock_adjustments refuse UPDATE, DELETE and TRUNCATE
--   for every role, the owner included (by trigger).
-- * The ledger chain: an entry must continue its customer's chain exactly
--   (seq = previous seq + 1, balance_after = previous balance_after + amount),
--   a purchase may not take the balance above the credit limit, and a payment
--   may not take it below zero.
-- * An order's total equals the sum of its lines and its ledger entry
--   (checked at commit, when all three exist).
-- * A return never exceeds what the order bought minus earlier returns.

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
                             'credit_ledger', 'stock_adjustments']
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
CREATE FUNCTION ontab_check_ledger_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    previous_balance bigint;
    limit_now bigint;
BEGIN
    IF NEW.seq = 1 THEN
        previous_balance := 0;
    ELSE
        SELECT balance_after INTO previous_balance
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

    IF NEW.kind = 'purchase' THEN
        SELECT credit_limit INTO limit_now
          FROM customers
         WHERE business_id = NEW.business_id AND id = NEW.customer_id;
        IF NEW.balance_after > limit_now THEN
            RAISE EXCEPTION 'credit limit exceeded: balance % above limit %', NEW.balance_after, limit_now
                USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_within_limit';
        END IF;
    ELSIF NEW.kind = 'payment' AND NEW.balance_after < 0 THEN
        RAISE EXCEPTION 'payment exceeds balance: balance would be %', NEW.balance_after
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_payment_within_balance';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER credit_ledger_chain BEFORE INSERT ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION ontab_check_ledger_chain();

-- Deferred to commit: the order, its lines and its ledger entry are written
-- by separate statements, and only together must they agree.
CREATE FUNCTION ontab_check_order_complete() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lines_total numeric;
    ledger_amount bigint;
BEGIN
    SELECT sum(line_total) INTO lines_total
      FROM order_items
     WHERE business_id = NEW.business_id AND order_id = NEW.id;
    SELECT amount INTO ledger_amount
      FROM credit_ledger
     WHERE business_id = NEW.business_id AND order_id = NEW.id AND kind = 'purchase';
    IF lines_total IS DISTINCT FROM NEW.total OR ledger_amount IS DISTINCT FROM NEW.total THEN
        RAISE EXCEPTION 'order % is inconsistent: total %, lines %, ledger %',
                        NEW.id, NEW.total, lines_total, ledger_amount
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_complete';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER orders_complete AFTER INSERT ON orders
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ontab_check_order_complete();

-- Likewise a return's amount must equal its lines and its ledger credit.
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
    already_returned bigint;
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
