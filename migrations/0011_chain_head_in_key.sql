-- The head of a customer's chain from the chain's unique key alone.
--
-- The overdue report (src/db/reports.rs) reads the newest entry of every
-- customer's chain for its balance_after and purchases_to_date. Through
-- the key (business_id, customer_id, seq) that was an index probe plus a
-- heap fetch per customer: on bench/report.sh's ledger (10,000 customers,
-- 1,000,000 entries) 40,000 buffer accesses, half of them missing the
-- default 128 MB of shared_buffers, and about 100 ms of the backend's CPU
-- per report. The key now carries both columns (INCLUDE: stored in its
-- leaves, not part of uniqueness), so the probe is an index-only scan
-- wherever the visibility map allows (a chain's head on a page not yet
-- vacuumed is still fetched from the heap), and costs half.
--
-- Guarantees unchanged: the same unique constraint, under the same name
-- (credit_ledger_business_id_customer_id_seq_key), on the same columns;
-- only its index is rebuilt wider. It replaces the old index rather than
-- adding a second one, so a ledger insert still maintains one index for
-- the chain. The new index is built first (about a second per million
-- entries here; writes to credit_ledger wait, reads go on), then swapped
-- in under an exclusive lock held until the migration commits.
CREATE UNIQUE INDEX credit_ledger_chain_head
    ON credit_ledger (business_id, customer_id, seq)
    INCLUDE (balance_after, purchases_to_date);

ALTER TABLE credit_ledger
    DROP CONSTRAINT credit_ledger_business_id_customer_id_seq_key,
    ADD CONSTRAINT credit_ledger_business_id_customer_id_seq_key
        UNIQUE USING INDEX credit_ledger_chain_head;
