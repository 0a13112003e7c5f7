-- Three costs found by profiling a batch of purchases on one hot product
-- (docs/benchmarks.md), removed without weakening any guard:
--
-- 1. purchases_to_date (0005) was set by a trigger of its own that looked
--    up the previous entry again, right after the chain trigger had looked
--    it up. The chain trigger now sets it from the same row.
--
-- 2. The partial index credit_ledger_open_purchases (WHERE kind =
--    'purchase') also matched the guards' lookups of a purchase entry by
--    order (WHERE ... order_id = $2 AND kind = 'purchase'). Without
--    statistics (a fresh database under load) the planner could pick it
--    over credit_ledger_one_per_order and scan every purchase of the
--    business at each commit. Zero-amount purchases are never owed, so the
--    report's index now covers only purchases with amount > 0, a predicate
--    those lookups do not imply.

CREATE OR REPLACE FUNCTION ontab_check_ledger_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    previous_balance bigint;
    previous_purchases bigint;
    limit_now bigint;
    purchased bigint;
BEGIN
    IF NEW.seq = 1 THEN
        previous_balance := 0;
        previous_purchases := 0;
    ELSE
        SELECT balance_after, purchases_to_date INTO previous_balance, previous_purchases
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

    -- Whatever the writer sent: the running sum of the customer's purchases.
    purchased := CASE WHEN NEW.kind = 'purchase' THEN NEW.amount ELSE 0 END;
    IF previous_purchases > 9223372036854775807 - purchased THEN
        RAISE EXCEPTION 'lifetime purchases of customer % exceed the largest representable amount', NEW.customer_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_purchases_to_date_range';
    END IF;
    NEW.purchases_to_date := previous_purchases + purchased;

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

DROP TRIGGER credit_ledger_purchases_to_date ON credit_ledger;
DROP FUNCTION ontab_set_purchases_to_date();

DROP INDEX credit_ledger_open_purchases;
CREATE INDEX credit_ledger_open_purchases
    ON credit_ledger (business_id, customer_id, purchases_to_date)
    INCLUDE (amount, created_at)
    WHERE kind = 'purchase' AND amount > 0;

-- 3. Every statement of the use cases (and of the triggers they fire) is a
--    lookup by key, so one plan serves every call. Under the default
--    plan_cache_mode PostgreSQL re-plans some of them at each call (row
--    level security and the inlined ontab_tenant() make a custom plan look
--    worth it), which cost about half of a purchase's time.
ALTER FUNCTION ontab_purchase(uuid, uuid, uuid, uuid[], bigint[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ontab_pay(uuid, uuid, bigint) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ontab_return(uuid, uuid, uuid, uuid[], bigint[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ontab_adjust_stock(uuid, uuid, bigint, text) SET plan_cache_mode = force_generic_plan;
