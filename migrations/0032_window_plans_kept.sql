-- The windows' bookkeeping keeps one plan per statement per session.
--
-- Measured with pg_stat_statements at 64 clients (bench/results/
-- 20261205T154725Z): the static statements of the fan-out and of the
-- recording were planned again at every call, 95-114 µs each for the
-- fan-out's reads of the endpoints and of the new events, 65 µs for the
-- INSERT of the delivered attempts, calls that run about 60 times a
-- second. PostgreSQL kept a custom plan for each: the plan cache moves to
-- the generic plan only when its estimated cost is no higher than the
-- custom plans' average, and for these it never did (the values give the
-- custom plans exact row estimates). The plans do not depend on the
-- values: the endpoints
-- by their primary key, the new events by a range of
-- (business_id, sequence), the pending head by the pending index, the
-- attempts written from arrays. Forced generic, each is planned once a
-- session (and again after an ANALYZE of its tables, as any cached plan).
--
-- The statements on the deliveries that must follow the queue's size
-- stay EXECUTEd, planned at every call (0020): plan_cache_mode does not
-- apply to them.
ALTER FUNCTION ontab_webhook_fan_out_window(int, uuid, int, int, uuid[], uuid[], bigint[], uuid[],
                                            uuid[], boolean[])
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ontab_webhook_attempted_window(uuid, int, bigint[], uuid[], bigint[], uuid[], uuid[],
                                              uuid[], uuid[], int[], text[], int[], timestamptz[],
                                              uuid[], uuid[], uuid[], uuid[], boolean)
    SET plan_cache_mode = force_generic_plan;

-- Called by nothing since the windows (0031) replaced it.
DROP FUNCTION ontab_webhook_fan_out_leasing_for(int, uuid, int, int, uuid);
