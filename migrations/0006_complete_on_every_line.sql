-- orders_complete and returns_complete (0002) fire when an order or a return
-- is inserted, so a line appended later, in another transaction, to an
-- order or return already committed went unchecked: the order's items
-- changed and its total no longer matched its lines or its ledger entry
-- (for a return: its amount, and stock reconciliation). The same check now
-- also runs, deferred to commit, for every inserted line, against the
-- parent's stored total. In the transaction that creates the parent it
-- agrees with the parent's own check; later, any new line breaks the sum.

CREATE FUNCTION ontab_check_order_of_line() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    order_total bigint;
    lines_total numeric;
    ledger_amount bigint;
BEGIN
    SELECT total INTO order_total
      FROM orders
     WHERE business_id = NEW.business_id AND id = NEW.order_id;
    SELECT sum(line_total) INTO lines_total
      FROM order_items
     WHERE business_id = NEW.business_id AND order_id = NEW.order_id;
    SELECT amount INTO ledger_amount
      FROM credit_ledger
     WHERE business_id = NEW.business_id AND order_id = NEW.order_id AND kind = 'purchase';
    IF order_total IS NULL OR lines_total IS DISTINCT FROM order_total
       OR ledger_amount IS DISTINCT FROM order_total THEN
        RAISE EXCEPTION 'order % is inconsistent: total %, lines %, ledger %',
                        NEW.order_id, order_total, lines_total, ledger_amount
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_complete';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER order_items_complete AFTER INSERT ON order_items
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ontab_check_order_of_line();

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
