-- A new delivery that heads its subject is inserted already leased.
--
-- The fan-out inserted every new delivery unleased, then, in a second
-- statement, looked up each new subject's head among the pending
-- deliveries and leased it and its run with an UPDATE. So each delivery
-- the fan-out started was written twice: the row, then a second version of
-- it carrying the lease (and the statement that found the heads was
-- planned at every call, as 0020 wants). In the uncontended benchmark with
-- one endpoint at 64 clients the two statements cost PostgreSQL 32 and
-- 49 µs per purchase (bench/results/20261204T105921Z, pg_stat_statements).
--
-- Now, per endpoint, a read picks the new deliveries to lease: of each
-- new subject with nothing pending at that endpoint, its first new ones
-- (up to a run of 20, as 0024); then one INSERT writes every new delivery,
-- those picked with the lease. That is the same rule as before: fan-out
-- and replay are the only writers of deliveries, both hold the endpoint's
-- row lock, and replay's deliveries are of older sequences than any new
-- one, so "nothing pending before" is "the first new one is the head". A
-- pending delivery finished by a recorder after the read's snapshot
-- leaves the new head unleased, to the claim, as it did before. The read
-- is a statement of its own so that the INSERT stays one that Citus
-- pushes down whole (tried as one statement, its window and LIMIT sent the
-- rows through the coordinator, which a delegated call cannot reach).
--
-- The lease's end is computed once, as a value (Citus routes a statement
-- with no STABLE call inside CASE, 0019), and p_max still bounds the
-- subjects leased across all endpoints.

CREATE OR REPLACE FUNCTION ontab_webhook_fan_out_leasing(
    p_limit int, p_lease uuid, p_lease_ms int, p_max int,
    OUT created bigint, OUT leased uuid[]
)
LANGUAGE plpgsql
SET random_page_cost = 1.1
AS $$
DECLARE
    -- A subject's run leased at once, as ontab_webhook_attempted_batch's.
    c_run constant int := 20;
    v_business uuid := ontab_tenant();
    v_until timestamptz := now() + make_interval(secs => p_lease_ms / 1000.0);
    -- Subjects that may still be leased: none without a lease to give.
    v_left int := CASE WHEN p_lease IS NULL THEN 0 ELSE greatest(p_max, 0) END;
    v_endpoint record;
    v_through bigint;
    v_to_lease uuid[];
    v_heads int;
    v_part record;
BEGIN
    created := 0::bigint;
    leased := '{}'::uuid[];
    FOR v_endpoint IN EXECUTE
        'SELECT e.id, e.types, e.disabled, e.fanned_out_through
           FROM webhook_endpoints e
          WHERE e.business_id = $1
          ORDER BY e.id
            FOR UPDATE'
        USING v_business
    LOOP
        -- Only the run of sequences that follows the cursor without a gap.
        EXECUTE
            'SELECT max(run.sequence)
               FROM (SELECT ev.sequence, row_number() OVER (ORDER BY ev.sequence) AS nth
                       FROM events ev
                      WHERE ev.business_id = $1 AND ev.sequence > $2
                      ORDER BY ev.sequence
                      LIMIT $3) AS run
              WHERE run.sequence = $2 + run.nth'
            INTO v_through
            USING v_business, v_endpoint.fanned_out_through, p_limit;
        CONTINUE WHEN v_through IS NULL;
        IF NOT v_endpoint.disabled THEN
            -- Which new deliveries to lease: of each new subject with
            -- nothing pending here, oldest first and as many subjects as
            -- may still be leased, its first new ones up to a run. Whether
            -- a subject has one pending is a probe of the pending index
            -- by the subject (LATERAL ... LIMIT 1): as NOT EXISTS, expected
            -- to meet one new subject, it was planned as a walk through
            -- all the endpoint's pending deliveries for each (5,000
            -- buffers for 60 events, bench/run.sh with auto_explain). A read
            -- of its own, so that the INSERT below stays one Citus pushes
            -- down to the business's shard whole (a window or a LIMIT in
            -- an INSERT's SELECT would send its rows through the
            -- coordinator, which a delegated call may not reach, 0019).
            IF v_left > 0 THEN
                EXECUTE
                    'WITH new AS (
                         SELECT ev.id, ev.sequence, coalesce(ev.subject_id, ev.business_id) AS subject_id,
                                row_number() OVER (PARTITION BY coalesce(ev.subject_id, ev.business_id)
                                                   ORDER BY ev.sequence) AS nth
                           FROM events ev
                          WHERE ev.business_id = $1 AND ev.sequence > $3 AND ev.sequence <= $4
                            AND ($5::text[] IS NULL OR ev.type = ANY ($5::text[]))
                     ), heads AS (
                         SELECT n.subject_id
                           FROM new n
                           LEFT JOIN LATERAL (
                                SELECT true AS pending
                                  FROM webhook_deliveries o
                                 WHERE o.business_id = $1 AND o.endpoint_id = $2
                                   AND o.subject_id = n.subject_id AND o.state = ''pending''
                                 LIMIT 1) p ON true
                          WHERE n.nth = 1 AND p.pending IS NULL
                          ORDER BY n.sequence
                          LIMIT $6
                     )
                     SELECT coalesce(array_agg(n.id), ''{}''::uuid[]) AS events,
                            (SELECT count(*) FROM heads)::int AS heads
                       FROM new n
                       JOIN heads h ON h.subject_id = n.subject_id
                      WHERE n.nth <= $7'
                    INTO v_to_lease, v_heads
                    USING v_business, v_endpoint.id, v_endpoint.fanned_out_through, v_through,
                          v_endpoint.types, v_left, c_run;
                v_left := v_left - v_heads;
            ELSE
                v_to_lease := '{}'::uuid[];
            END IF;
            -- Every new delivery in one INSERT, those chosen with the lease
            -- (parameters only in its CASE: Citus routes no STABLE call
            -- there, 0019).
            EXECUTE
                'WITH added AS (
                     INSERT INTO webhook_deliveries
                            (business_id, id, endpoint_id, event_id, sequence, subject_id, lease, leased_until)
                     SELECT ev.business_id, gen_random_uuid(), $2, ev.id, ev.sequence,
                            coalesce(ev.subject_id, ev.business_id),
                            CASE WHEN ev.id = ANY ($6::uuid[]) THEN $7::uuid END,
                            CASE WHEN ev.id = ANY ($6::uuid[]) THEN $8::timestamptz END
                       FROM events ev
                      WHERE ev.business_id = $1 AND ev.sequence > $3 AND ev.sequence <= $4
                        AND ($5::text[] IS NULL OR ev.type = ANY ($5::text[]))
                     RETURNING id, lease
                 )
                 SELECT count(*) AS created,
                        coalesce(array_agg(added.id) FILTER (WHERE added.lease IS NOT NULL),
                                 ''{}''::uuid[]) AS leased
                   FROM added'
                INTO v_part
                USING v_business, v_endpoint.id, v_endpoint.fanned_out_through, v_through,
                      v_endpoint.types, v_to_lease, p_lease, v_until;
            created := created + v_part.created;
            leased := leased || v_part.leased;
        END IF;
        UPDATE webhook_endpoints
           SET fanned_out_through = v_through
         WHERE business_id = v_business AND id = v_endpoint.id;
    END LOOP;
END
$$;

-- Recording: each delivered subject's next run found by one statement.
--
-- After recording a batch, ontab_webhook_attempted_batch looked for each
-- delivered subject's next run with a statement per subject: in the
-- uncontended benchmark with one endpoint (64 clients) that loop cost
-- about 37 µs per delivery recorded, most subjects having nothing pending
-- (bench/results/20261204T105921Z: the function's 6.9 ms per call against
-- 4.4 ms for its recording statement, 67 deliveries a call). On one
-- PostgreSQL the probes now run as LATERAL subqueries of one statement,
-- each locking its subject's first pending deliveries (FOR UPDATE) in the
-- same (endpoint, subject) order and taking, as before, the prefix that
-- is due and free (a running bool_and). Citus keeps the loop (row_by_row,
-- as for the recording itself, 0019). The rest of the function is 0024's.

CREATE OR REPLACE FUNCTION ontab_webhook_attempted_batch(
    p_lease uuid, p_lease_ms int, p_schedule bigint[],
    p_deliveries uuid[], p_status int[], p_error text[], p_duration_ms int[],
    p_attempted_at timestamptz[], p_continue boolean[]
) RETURNS TABLE (delivery_id uuid, outcome text, next_delivery_id uuid)
LANGUAGE plpgsql
SET random_page_cost = 1.1
AS $$
#variable_conflict use_column
DECLARE
    -- The tenant and the time as values: Citus routes a statement to the
    -- business's shard only when it sees the business, and cannot put a
    -- STABLE call inside CASE. now() is the transaction's start either way.
    v_business uuid := ontab_tenant();
    v_now timestamptz := now();
    -- On Citus, one delivery at a time (0019): an INSERT ... SELECT there
    -- goes through the coordinator, which a delegated call may not reach.
    row_by_row boolean := to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
    d record;
    k int;
    v_outcome text;
    v_state text;
    v_next_at timestamptz;
    v_finished_at timestamptz;
    v_ids uuid[] := '{}'::uuid[];
    v_outcomes text[] := '{}'::text[];
    v_endpoints uuid[] := '{}'::uuid[];
    v_subjects uuid[] := '{}'::uuid[];
    v_continue boolean[] := '{}'::boolean[];
    v_gone uuid[] := '{}'::uuid[];
    v_live uuid[];
    v_done record;
    v_cand record;
    v_run uuid[];
    -- A subject's run leased at once: at most this many of its deliveries.
    c_run constant int := 20;
    v_leased_ids uuid[] := '{}'::uuid[];
    v_leased_endpoints uuid[] := '{}'::uuid[];
    v_leased_subjects uuid[] := '{}'::uuid[];
BEGIN
    IF NOT row_by_row THEN
        -- 0018's statement, planned with this call's values (EXECUTE):
        -- which index finds the batch depends on the table's size now.
        EXECUTE $sql$
        WITH input AS (
            SELECT DISTINCT ON (i.id) i.id, i.status, i.error, i.duration_ms, i.attempted_at, i.cont
              FROM unnest($4, $5, $6, $7, $8, $9)
                   AS i(id, status, error, duration_ms, attempted_at, cont)
             WHERE i.id IS NOT NULL
             ORDER BY i.id
        ), locked AS MATERIALIZED (
            SELECT d.business_id, d.id, d.endpoint_id, d.event_id, d.subject_id, d.attempts
              FROM webhook_deliveries d
             WHERE d.business_id = $1 AND d.id = ANY ($4)
               AND d.finished_at IS NULL AND d.lease = $2
             ORDER BY d.id
               FOR UPDATE
        ), timed AS MATERIALIZED (
            SELECT h.*,
                   CASE h.outcome
                        WHEN 'disabled' THEN $10
                        WHEN 'retrying' THEN $10 + make_interval(secs => $3[h.attempts + 1] / 1000.0)
                   END AS next_at
              FROM (SELECT l.business_id, l.id, l.endpoint_id, l.event_id, l.subject_id, l.attempts,
                           i.status, i.error, i.duration_ms, i.attempted_at,
                           coalesce(i.cont, false) AS cont,
                           CASE WHEN i.status BETWEEN 200 AND 299 THEN 'delivered'
                                WHEN i.status = 410 THEN 'disabled'
                                WHEN l.attempts + 1 <= coalesce(cardinality($3), 0) THEN 'retrying'
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
                   finished_at = CASE WHEN t.outcome IN ('delivered', 'gave_up') THEN $10 END,
                   lease = NULL,
                   leased_until = NULL
              FROM timed t
             WHERE d.business_id = $1 AND d.id = ANY ($4) AND d.id = t.id
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
               SET disabled = true, disabled_reason = 'gone', updated_at = $10
             WHERE e.business_id = $1
               AND e.id IN (SELECT t.endpoint_id FROM timed t WHERE t.outcome = 'disabled')
               AND NOT e.disabled
        )
        SELECT coalesce(array_agg(t.id), '{}'), coalesce(array_agg(t.outcome), '{}'),
               coalesce(array_agg(t.endpoint_id), '{}'), coalesce(array_agg(t.subject_id), '{}'),
               coalesce(array_agg(t.cont), '{}')
          FROM timed t
        $sql$
        INTO v_ids, v_outcomes, v_endpoints, v_subjects, v_continue
        USING v_business, p_lease, p_schedule, p_deliveries, p_status, p_error, p_duration_ms,
              p_attempted_at, p_continue, v_now;
    ELSE
        -- The deliveries still held under this lease, locked in id order (as
        -- every recorder locks them). Each is recorded by its own UPDATE and
        -- INSERT ... VALUES, the business named in each: Citus runs an
        -- INSERT ... SELECT by way of the coordinator, which a delegated call
        -- on a worker may not reach.
        FOR d IN
            SELECT w.id, w.endpoint_id, w.event_id, w.subject_id, w.attempts
              FROM webhook_deliveries w
             WHERE w.business_id = v_business AND w.id = ANY (p_deliveries)
               AND w.finished_at IS NULL AND w.lease = p_lease
             ORDER BY w.id
               FOR UPDATE
        LOOP
            -- A delivery named twice is recorded once, with its first attempt.
            k := array_position(p_deliveries, d.id);
            v_outcome := CASE WHEN p_status[k] BETWEEN 200 AND 299 THEN 'delivered'
                              WHEN p_status[k] = 410 THEN 'disabled'
                              WHEN d.attempts + 1 <= coalesce(cardinality(p_schedule), 0) THEN 'retrying'
                              ELSE 'gave_up' END;
            v_next_at := CASE v_outcome
                              WHEN 'disabled' THEN v_now
                              WHEN 'retrying' THEN v_now + make_interval(secs => p_schedule[d.attempts + 1] / 1000.0)
                         END;
            v_state := CASE v_outcome WHEN 'delivered' THEN 'delivered'
                                      WHEN 'gave_up' THEN 'failed'
                                      ELSE 'pending' END;
            v_finished_at := CASE WHEN v_outcome IN ('delivered', 'gave_up') THEN v_now END;
            -- Plain values in the statement: Citus deparses a simple CASE on a
            -- PL/pgSQL variable wrongly (0014).
            UPDATE webhook_deliveries w
               SET attempts = w.attempts + 1,
                   state = v_state,
                   next_attempt_at = coalesce(v_next_at, w.next_attempt_at),
                   finished_at = v_finished_at,
                   lease = NULL,
                   leased_until = NULL
             WHERE w.business_id = v_business AND w.id = d.id;
            INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id, attempt,
                                          status_code, error, duration_ms, outcome, next_attempt_at,
                                          attempted_at)
            VALUES (v_business, gen_random_uuid(), d.endpoint_id, d.id, d.event_id, d.attempts + 1,
                    p_status[k], left(p_error[k], 1000), greatest(p_duration_ms[k], 0), v_outcome,
                    v_next_at, p_attempted_at[k]);
            v_ids := v_ids || d.id;
            v_outcomes := v_outcomes || v_outcome;
            v_endpoints := v_endpoints || d.endpoint_id;
            v_subjects := v_subjects || d.subject_id;
            v_continue := v_continue || coalesce(p_continue[k], false);
            IF v_outcome = 'disabled' THEN
                v_gone := v_gone || d.endpoint_id;
            END IF;
        END LOOP;
        IF cardinality(v_gone) > 0 THEN
            UPDATE webhook_endpoints e
               SET disabled = true, disabled_reason = 'gone', updated_at = v_now
             WHERE e.business_id = v_business AND e.id = ANY (v_gone) AND NOT e.disabled;
        END IF;
    END IF;

    IF cardinality(v_ids) = 0 THEN
        RETURN;
    END IF;

    -- Each delivered subject's next run (0024): its first pending
    -- deliveries in sequence order (one probe of the pending index, its
    -- exact prefix and order), locked, and taken from the head for as
    -- long as each is due and free: unleased, its lease expired, or
    -- already this server's (the rest of a run its task cut short).
    -- Locked first, so what is taken is a prefix of the subject's queue
    -- whatever commits meanwhile. Leased by one statement for every
    -- subject, planned with its values (EXECUTE, as above).
    SELECT coalesce(array_agg(e.id), '{}'::uuid[]) INTO v_live
      FROM webhook_endpoints e
     WHERE e.business_id = v_business AND e.id = ANY (v_endpoints) AND NOT e.disabled;
    IF NOT row_by_row THEN
        -- 0025: every subject's probe in one statement, a LATERAL per
        -- subject in (endpoint, subject) order as the loop below locks
        -- them. As a loop, each subject cost a statement of its own
        -- (37 µs per delivery recorded, most of them finding nothing
        -- pending, in the uncontended benchmark with one endpoint).
        EXECUTE $sql$
        WITH done AS MATERIALIZED (
            SELECT DISTINCT r.endpoint_id, r.subject_id
              FROM unnest($2::text[], $3::uuid[], $4::uuid[], $5::boolean[])
                   AS r(outcome, endpoint_id, subject_id, cont)
             WHERE r.outcome = 'delivered' AND r.cont AND r.endpoint_id = ANY ($6)
             ORDER BY r.endpoint_id, r.subject_id
        ), queued AS MATERIALIZED (
            SELECT q.id, q.endpoint_id, q.subject_id, q.sequence, q.free
              FROM done s
             CROSS JOIN LATERAL (
                   SELECT n.id, n.endpoint_id, n.subject_id, n.sequence,
                          (n.next_attempt_at <= $7
                           AND (n.leased_until IS NULL OR n.leased_until <= $7 OR n.lease = $8)) AS free
                     FROM webhook_deliveries n
                    WHERE n.business_id = $1 AND n.endpoint_id = s.endpoint_id
                      AND n.subject_id = s.subject_id AND n.state = 'pending'
                    ORDER BY n.sequence, n.id
                    LIMIT $9
                      FOR UPDATE) q
        ), taken AS (
            SELECT q.id, q.endpoint_id, q.subject_id,
                   bool_and(q.free) OVER (PARTITION BY q.endpoint_id, q.subject_id
                                          ORDER BY q.sequence, q.id) AS prefix
              FROM queued q
        )
        SELECT coalesce(array_agg(t.id), '{}'::uuid[]),
               coalesce(array_agg(t.endpoint_id), '{}'::uuid[]),
               coalesce(array_agg(t.subject_id), '{}'::uuid[])
          FROM taken t
         WHERE t.prefix
        $sql$
        INTO v_leased_ids, v_leased_endpoints, v_leased_subjects
        USING v_business, v_outcomes, v_endpoints, v_subjects, v_continue, v_live, v_now, p_lease,
              c_run;
    ELSE
        -- On Citus, one subject at a time, as 0024 did everywhere.
        FOR v_done IN
            SELECT DISTINCT r.endpoint_id, r.subject_id
              FROM unnest(v_outcomes, v_endpoints, v_subjects, v_continue)
                   AS r(outcome, endpoint_id, subject_id, cont)
             WHERE r.outcome = 'delivered' AND r.cont AND r.endpoint_id = ANY (v_live)
             ORDER BY r.endpoint_id, r.subject_id
        LOOP
            v_run := '{}'::uuid[];
            FOR v_cand IN
                SELECT n.id, n.next_attempt_at, n.lease, n.leased_until
                  FROM webhook_deliveries n
                 WHERE n.business_id = v_business AND n.endpoint_id = v_done.endpoint_id
                   AND n.subject_id = v_done.subject_id AND n.state = 'pending'
                 ORDER BY n.sequence, n.id
                 LIMIT c_run
                   FOR UPDATE
            LOOP
                EXIT WHEN v_cand.next_attempt_at > v_now
                       OR NOT (v_cand.leased_until IS NULL OR v_cand.leased_until <= v_now
                               OR v_cand.lease = p_lease);
                v_run := v_run || v_cand.id;
            END LOOP;
            CONTINUE WHEN cardinality(v_run) = 0;
            v_leased_ids := v_leased_ids || v_run;
            v_leased_endpoints := v_leased_endpoints || array_fill(v_done.endpoint_id, ARRAY[cardinality(v_run)]);
            v_leased_subjects := v_leased_subjects || array_fill(v_done.subject_id, ARRAY[cardinality(v_run)]);
        END LOOP;
    END IF;
    IF cardinality(v_leased_ids) > 0 THEN
        EXECUTE
            'UPDATE webhook_deliveries w
                SET lease = $2, leased_until = $3 + make_interval(secs => $4 / 1000.0)
              WHERE w.business_id = $1 AND w.id = ANY ($5)'
            USING v_business, p_lease, v_now, p_lease_ms, v_leased_ids;
    END IF;

    RETURN QUERY
    SELECT r.id, r.outcome, l.id
      FROM unnest(v_ids, v_outcomes, v_endpoints, v_subjects, v_continue)
           AS r(id, outcome, endpoint_id, subject_id, cont)
      LEFT JOIN unnest(v_leased_ids, v_leased_endpoints, v_leased_subjects)
           AS l(id, endpoint_id, subject_id)
        ON r.outcome = 'delivered' AND r.cont
       AND l.endpoint_id = r.endpoint_id AND l.subject_id = r.subject_id;
END
$$;

