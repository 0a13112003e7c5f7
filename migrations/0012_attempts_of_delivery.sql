-- A delivery's attempts reached by index.
--
-- webhook_attempts refers to its delivery (business_id, delivery_id) ON
-- DELETE CASCADE, but nothing indexed that pair: every delivery deleted
-- (retention pruning an event takes its deliveries, 0007) made the cascade
-- walk every attempt of the business, and `ontab audit`'s count of a
-- delivery's attempts did the same per delivery. Both were quadratic in
-- the business's history: measured (bench/run.sh, 110,492 deliveries in
-- four businesses) the audit was still in its webhook check after seven
-- minutes.
-- With the index each is one probe per delivery.
--
-- It costs one more index entry per attempt, about one per purchase with
-- an endpoint; docs/benchmarks.md has the throughput with it.
CREATE INDEX webhook_attempts_of_delivery ON webhook_attempts (business_id, delivery_id);

-- And no statistics on which business a delivery is of. Every statement of
-- the delivery workers reaches deliveries by key within one business, but
-- PostgreSQL chooses between "probe each id" and "walk the business's
-- range of the primary key, filtering by id" by the rows it expects of the
-- business. A business created after the last ANALYZE is not in the
-- column's most common values, so it was expected to have no deliveries:
-- the walk looked free, and it was what ran, through every delivery the
-- business had so far (measured: bench/run.sh, the third business of a
-- run, recording a batch of attempts 26 ms instead of 3 ms, leasing 12 ms,
-- deliveries lagging 8.8 s at p99). Without statistics the planner
-- expects the same share of the table (1/200) of every business, new or
-- not, which makes a range walk look as costly as it becomes.
ALTER TABLE webhook_deliveries ALTER COLUMN business_id SET STATISTICS 0;
