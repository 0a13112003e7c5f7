-- An order's completeness was checked twice at commit: once for the order
-- (orders_complete, 0002) and once more for each of its lines
-- (order_items_complete, 0006), the same three lookups each time, about a
-- quarter of a batched purchase's database time.
--
-- The line check alone is enough for every order that has a line: an
-- order's lines can only be added, never changed or removed (0002), each
-- added line fires its own check against the order's stored total, the sum
-- of all its lines and its ledger entry, and the ledger entry can neither be
-- added twice (credit_ledger_one_per_order) nor changed. What only the
-- order's own check can catch is an order committed without any line, so
-- that is all it checks now. Both still fire at commit (DEFERRABLE
-- INITIALLY DEFERRED), or at once under SET CONSTRAINTS ... IMMEDIATE, with
-- the same constraint name and message as before.
--
-- The line check also reads its three facts in one statement rather than
-- three.

CREATE OR REPLACE FUNCTION ontab_check_order_complete() RETURNS trigger
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

CREATE OR REPLACE FUNCTION ontab_check_order_of_line() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    order_total bigint;
    lines_total numeric;
    ledger_amount bigint;
BEGIN
    SELECT (SELECT o.total FROM orders o
             WHERE o.business_id = NEW.business_id AND o.id = NEW.order_id),
           (SELECT sum(i.line_total) FROM order_items i
             WHERE i.business_id = NEW.business_id AND i.order_id = NEW.order_id),
           (SELECT l.amount FROM credit_ledger l
             WHERE l.business_id = NEW.business_id AND l.order_id = NEW.order_id AND l.kind = 'purchase')
      INTO order_total, lines_total, ledger_amount;
    IF order_total IS NULL OR lines_total IS DISTINCT FROM order_total
       OR ledger_amount IS DISTINCT FROM order_total THEN
        RAISE EXCEPTION 'order % is inconsistent: total %, lines %, ledger %',
                        NEW.order_id, order_total, lines_total, ledger_amount
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_complete';
    END IF;
    RETURN NULL;
END
$$;
