-- Delivery attempts recorded a batch at a time, as purchases are committed.
--
-- Measured (bench/run.sh uncontended-webhook at 64 clients,
-- pg_stat_statements, bench/results/20261203T001520Z): with one endpoint
-- PostgreSQL spent 3,184 µs of CPU per purchase against 900 µs without.
-- Each delivery was two transactions of its own (read the job; record the
-- attempt and lease the subject's next), each with its tenant set-up and
-- commit: ontab_webhook_attempted 448 µs and
-- ontab_claim_next_webhook_delivery 258 µs per purchase, when the purchase
-- itself, group-committed about 20 to a transaction, cost 1,692 µs.
--
-- ontab_webhook_attempted_batch records the attempts of many deliveries of
-- one business in one statement each for deliveries, attempts and
-- endpoints, then leases each delivered subject's next delivery in one
-- more; the caller reads the bodies of those in the same transaction. The
-- rules are 0006's and 0008's, unchanged: only the lease holder records
-- (a delivery whose lease was lost is left alone and not answered); 2xx
-- delivers, 410 disables the endpoint and leaves the delivery pending,
-- anything else retries after p_schedule[attempts] ms or gives up; the
-- next delivery leased is its (endpoint, subject)'s lowest pending
-- sequence, due, its endpoint enabled, not leased or its lease expired
-- (re-checked on the locked row, so two servers never both lease it).
--
-- How the rows are reached matters more than usual here. The deliveries
-- table is a queue, and a business created after the last ANALYZE is not
-- in its statistics: the planner then believes that business has one
-- delivery, and any plan that walks "every delivery of the business" (a
-- merge join over the primary key's business range, a scan of the
-- business's part of another index) looks free. Measured with autovacuum
-- on (bench/run.sh uncontended-webhook, second round, a new business):
-- 30-120 ms per batch, growing with the backlog. So every statement below
-- reaches a delivery by its full primary key (business, id = ANY (ids)),
-- never by a join the planner could turn around; pending is tested as
-- `finished_at IS NULL` (the same, by the CHECK of 0006), which the
-- partial index of pending deliveries cannot serve by business alone; and
-- the index of deliveries by event leads with the event, so it serves the
-- cascade from events (both columns) and never a walk by business.
--
-- Runs as the caller (ontab_app, bound by row level security): every row
-- it reads or writes is the current tenant's.
DROP INDEX webhook_deliveries_of_event;
CREATE INDEX webhook_deliveries_of_event ON webhook_deliveries (event_id, business_id);

CREATE FUNCTION ontab_webhook_attempted_batch(
    p_lease uuid, p_lease_ms int, p_schedule bigint[],
    p_deliveries uuid[], p_status int[], p_error text[], p_duration_ms int[],
    p_attempted_at timestamptz[], p_continue boolean[]
) RETURNS TABLE (delivery_id uuid, outcome text, next_delivery_id uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ids uuid[];
    v_outcomes text[];
    v_endpoints uuid[];
    v_subjects uuid[];
    v_continue boolean[];
    v_heads uuid[];
BEGIN
    WITH input AS (
        SELECT DISTINCT ON (i.id) i.id, i.status, i.error, i.duration_ms, i.attempted_at, i.cont
          FROM unnest(p_deliveries, p_status, p_error, p_duration_ms, p_attempted_at, p_continue)
               AS i(id, status, error, duration_ms, attempted_at, cont)
         WHERE i.id IS NOT NULL
         ORDER BY i.id
    ), locked AS MATERIALIZED (
        SELECT d.business_id, d.id, d.endpoint_id, d.event_id, d.subject_id, d.attempts
          FROM webhook_deliveries d
         WHERE d.business_id = ontab_tenant() AND d.id = ANY (p_deliveries)
           AND d.finished_at IS NULL AND d.lease = p_lease
         ORDER BY d.id
           FOR UPDATE
    ), timed AS MATERIALIZED (
        SELECT h.*,
               CASE h.outcome
                    WHEN 'disabled' THEN now()
                    WHEN 'retrying' THEN now() + make_interval(secs => p_schedule[h.attempts + 1] / 1000.0)
               END AS next_at
          FROM (SELECT l.business_id, l.id, l.endpoint_id, l.event_id, l.subject_id, l.attempts,
                       i.status, i.error, i.duration_ms, i.attempted_at,
                       coalesce(i.cont, false) AS cont,
                       CASE WHEN i.status BETWEEN 200 AND 299 THEN 'delivered'
                            WHEN i.status = 410 THEN 'disabled'
                            WHEN l.attempts + 1 <= coalesce(cardinality(p_schedule), 0) THEN 'retrying'
                            ELSE 'gave_up' END AS outcome
                  FROM locked l
                  JOIN input i ON i.id = l.id) h
    ), recorded AS (
        UPDATE webhook_deliveries d
           SET attempts = d.attempts + 1,
               state = CASE t.outcome WHEN 'delivered' THEN 'delivered'
                                      WHEN 'gave_up' THEN 'failed'
                                      ELSE 'pending' END,
               next_attempt_at = coalesce(t.next_at, d.next_attempt_at),
               finished_at = CASE WHEN t.outcome IN ('delivered', 'gave_up') THEN now() END,
               lease = NULL,
               leased_until = NULL
          FROM timed t
         WHERE d.business_id = ontab_tenant() AND d.id = ANY (p_deliveries) AND d.id = t.id
    ), logged AS (
        INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id, attempt,
                                      status_code, error, duration_ms, outcome, next_attempt_at,
                                      attempted_at)
        SELECT t.business_id, gen_random_uuid(), t.endpoint_id, t.id, t.event_id, t.attempts + 1,
               t.status, left(t.error, 1000), greatest(t.duration_ms, 0), t.outcome, t.next_at,
               t.attempted_at
          FROM timed t
    ), gone AS (
        UPDATE webhook_endpoints e
           SET disabled = true, disabled_reason = 'gone', updated_at = now()
         WHERE e.business_id = ontab_tenant()
           AND e.id IN (SELECT t.endpoint_id FROM timed t WHERE t.outcome = 'disabled')
           AND NOT e.disabled
    )
    SELECT array_agg(t.id), array_agg(t.outcome), array_agg(t.endpoint_id),
           array_agg(t.subject_id), array_agg(t.cont)
      INTO v_ids, v_outcomes, v_endpoints, v_subjects, v_continue
      FROM timed t;

    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    -- New statements: they see what the one above wrote, so each delivered
    -- subject's head is now its next delivery. Heads are found per subject
    -- (one probe of the pending index each), then leased by primary key.
    SELECT array_agg(n.id) INTO v_heads
      FROM (SELECT DISTINCT r.endpoint_id, r.subject_id
              FROM unnest(v_outcomes, v_endpoints, v_subjects, v_continue)
                   AS r(outcome, endpoint_id, subject_id, cont)
             WHERE r.outcome = 'delivered' AND r.cont) done
      JOIN webhook_endpoints e
        ON e.business_id = ontab_tenant() AND e.id = done.endpoint_id AND NOT e.disabled
     CROSS JOIN LATERAL (
           SELECT d.id, d.next_attempt_at, d.leased_until
             FROM webhook_deliveries d
            WHERE d.business_id = ontab_tenant() AND d.endpoint_id = done.endpoint_id
              AND d.subject_id = done.subject_id AND d.state = 'pending'
            ORDER BY d.sequence, d.id
            LIMIT 1) n
     WHERE n.next_attempt_at <= now()
       AND (n.leased_until IS NULL OR n.leased_until <= now());

    RETURN QUERY
    WITH leased AS (
        UPDATE webhook_deliveries d
           SET lease = p_lease, leased_until = now() + make_interval(secs => p_lease_ms / 1000.0)
         WHERE d.business_id = ontab_tenant() AND d.id = ANY (coalesce(v_heads, '{}'))
           AND d.finished_at IS NULL
           AND (d.leased_until IS NULL OR d.leased_until <= now())
        RETURNING d.endpoint_id, d.subject_id, d.id
    )
    SELECT r.id, r.outcome, l.id
      FROM unnest(v_ids, v_outcomes, v_endpoints, v_subjects, v_continue)
           AS r(id, outcome, endpoint_id, subject_id, cont)
      LEFT JOIN leased l
        ON r.outcome = 'delivered' AND r.cont
       AND l.endpoint_id = r.endpoint_id AND l.subject_id = r.subject_id;
END
$$;
REVOKE ALL ON FUNCTION ontab_webhook_attempted_batch(uuid, int, bigint[], uuid[], int[], text[], int[], timestamptz[], boolean[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_attempted_batch(uuid, int, bigint[], uuid[], int[], text[], int[], timestamptz[], boolean[]) TO ontab_app;

-- Replaced by the function above; nothing calls them any more.
DROP FUNCTION ontab_webhook_attempted(uuid, uuid, int, text, int, timestamptz, bigint[]);
DROP FUNCTION ontab_claim_next_webhook_delivery(uuid, int, uuid, uuid, uuid);
