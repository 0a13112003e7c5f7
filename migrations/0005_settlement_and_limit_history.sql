-- Derived data for the overdue report, and the credit-limit history that
-- lets `ontab audit` check every purchase against the limit of its time.
--
-- Guarantees established here:
-- * Every ledger entry carries purchases_to_date: the sum of its customer's
--   purchase amounts up to and including it. A BEFORE INSERT trigger sets it
--   from the previous entry whatever the writer sent, in the statement that
--   appends the entry; history being immutable, it never goes stale.
--   With it, FIFO settlement is a range query: at the newest entry,
--   purchases_to_date - balance_after is everything ever credited (payments
--   and returns), and a purchase is not yet fully settled exactly when its
--   purchases_to_date exceeds that. The partial index
--   credit_ledger_open_purchases serves the query, so the report reads only
--   unsettled purchases, however long a customer's history.
-- * credit_limit_changes records every credit limit a customer has had,
--   append-only, with the ledger position after which it applies. It is
--   written by triggers on customers (INSERT, and UPDATE of credit_limit)
--   while the customer's row is locked, the same lock every ledger append
--   takes first, so "the limit in force for entry n" is exact. Customers
--   that existed before this migration start their history at their current
--   limit and ledger head: their earlier purchases cannot be checked.

-- bigint, like every amount: its comparison is leakproof, so under row
-- level security the report's range condition is an index condition
-- (numeric's is not, and would mean scanning every purchase). The price: a
-- customer's lifetime purchases must stay below 9.2e18 minor units.
ALTER TABLE credit_ledger ADD COLUMN purchases_to_date bigint;

-- The backfill rewrites immutable history once, inside this migration's
-- transaction. The owner is subject to forced row level security, so RLS
-- is relaxed for the owner meanwhile (a superuser bypasses it anyway).
ALTER TABLE credit_ledger DISABLE TRIGGER credit_ledger_immutable;
ALTER TABLE credit_ledger NO FORCE ROW LEVEL SECURITY;
ALTER TABLE customers NO FORCE ROW LEVEL SECURITY;
UPDATE credit_ledger l
   SET purchases_to_date = running.total
  FROM (SELECT business_id, id,
               coalesce(sum(amount) FILTER (WHERE kind = 'purchase')
                            OVER (PARTITION BY business_id, customer_id ORDER BY seq), 0) AS total
          FROM credit_ledger) running
 WHERE l.business_id = running.business_id AND l.id = running.id;
ALTER TABLE credit_ledger ENABLE TRIGGER credit_ledger_immutable;
ALTER TABLE credit_ledger ALTER COLUMN purchases_to_date SET NOT NULL;
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_purchases_to_date_nonnegative
    CHECK (purchases_to_date >= 0);

-- Runs after credit_ledger_chain (triggers fire in name order), which has
-- already refused an entry without its predecessor.
CREATE FUNCTION ontab_set_purchases_to_date() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    previous bigint;
    purchased bigint := CASE WHEN NEW.kind = 'purchase' THEN NEW.amount ELSE 0 END;
BEGIN
    SELECT purchases_to_date INTO previous
      FROM credit_ledger
     WHERE business_id = NEW.business_id
       AND customer_id = NEW.customer_id
       AND seq = NEW.seq - 1;
    previous := coalesce(previous, 0);
    IF previous > 9223372036854775807 - purchased THEN
        RAISE EXCEPTION 'lifetime purchases of customer % exceed the largest representable amount', NEW.customer_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_purchases_to_date_range';
    END IF;
    NEW.purchases_to_date := previous + purchased;
    RETURN NEW;
END
$$;

CREATE TRIGGER credit_ledger_purchases_to_date BEFORE INSERT ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION ontab_set_purchases_to_date();

-- The unsettled purchases of a customer are one range of this index;
-- INCLUDE lets the report read them without visiting the table.
CREATE INDEX credit_ledger_open_purchases
    ON credit_ledger (business_id, customer_id, purchases_to_date)
    INCLUDE (amount, created_at)
    WHERE kind = 'purchase';

CREATE TABLE credit_limit_changes (
    business_id   uuid NOT NULL,
    -- Orders the changes of one customer: they are serialized by its row
    -- lock, and the value is drawn while the lock is held.
    id            bigint GENERATED ALWAYS AS IDENTITY,
    customer_id   uuid NOT NULL,
    credit_limit  bigint NOT NULL CHECK (credit_limit >= 0),
    -- The limit governs the customer's ledger entries with seq > after_seq.
    after_seq     bigint NOT NULL CHECK (after_seq >= 0),
    changed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id)
);
CREATE INDEX credit_limit_changes_by_customer
    ON credit_limit_changes (business_id, customer_id, id);

INSERT INTO credit_limit_changes (business_id, customer_id, credit_limit, after_seq, changed_at)
SELECT c.business_id, c.id, c.credit_limit,
       coalesce((SELECT max(l.seq) FROM credit_ledger l
                  WHERE l.business_id = c.business_id AND l.customer_id = c.id), 0),
       now()
  FROM customers c;

ALTER TABLE credit_ledger FORCE ROW LEVEL SECURITY;
ALTER TABLE customers FORCE ROW LEVEL SECURITY;

-- Runs as the writer (ontab_app under its tenant), so row level security
-- applies to what it records. In READ COMMITTED each statement here takes a
-- fresh snapshot after the customer row lock was won: it sees every ledger
-- entry appended under that lock before.
CREATE FUNCTION ontab_record_credit_limit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_seq bigint;
BEGIN
    SELECT seq INTO head_seq
      FROM credit_ledger
     WHERE business_id = NEW.business_id AND customer_id = NEW.id
     ORDER BY seq DESC
     LIMIT 1;
    INSERT INTO credit_limit_changes (business_id, customer_id, credit_limit, after_seq)
    VALUES (NEW.business_id, NEW.id, NEW.credit_limit, coalesce(head_seq, 0));
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_record_credit_limit AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION ontab_record_credit_limit();
CREATE TRIGGER customers_record_credit_limit_change AFTER UPDATE OF credit_limit ON customers
    FOR EACH ROW WHEN (OLD.credit_limit IS DISTINCT FROM NEW.credit_limit)
    EXECUTE FUNCTION ontab_record_credit_limit();

CREATE TRIGGER credit_limit_changes_immutable BEFORE UPDATE OR DELETE ON credit_limit_changes
    FOR EACH ROW EXECUTE FUNCTION ontab_refuse_history_change();
CREATE TRIGGER credit_limit_changes_no_truncate BEFORE TRUNCATE ON credit_limit_changes
    FOR EACH STATEMENT EXECUTE FUNCTION ontab_refuse_history_change();

ALTER TABLE credit_limit_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE credit_limit_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON credit_limit_changes
    USING (business_id = ontab_tenant())
    WITH CHECK (business_id = ontab_tenant());
GRANT SELECT, INSERT ON credit_limit_changes TO ontab_app;
GRANT USAGE ON SEQUENCE credit_limit_changes_id_seq TO ontab_app;
