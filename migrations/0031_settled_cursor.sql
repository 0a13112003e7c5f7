-- Delivery rows only for the exceptions: a settled cursor per endpoint.
--
-- Every event an endpoint took was a row of webhook_deliveries: inserted by
-- the fan-out, locked and updated by the recorder (not a HOT update: the
-- pending index's predicate names `state`), each with its index entries
-- and the probes that found them. With one local endpoint that was about
-- three quarters of what PostgreSQL spent on it, and purchase throughput
-- with one endpoint was 0.77-0.88x of none (bench/results/
-- 20261205T132820Z-pairs.md, 20261205T133728Z-pairs.md,
-- 20261205T1335Z-delivery-rows-bound.md).
--
-- Now the common case writes no delivery row. One server at a time holds
-- an endpoint's window (window_lease, renewed by its fan-outs and its
-- recordings, taken over once it has expired). Its fan-out hands the new
-- events of a subject with nothing pending out in memory; its recorder
-- writes, for each delivered one, only the attempt (delivery_id NULL), and
-- moves settled_through to just below the oldest event it still holds.
-- Rows remain for what needs them:
--   * an event handed out in memory that was not delivered becomes a row
--     with its first attempt counted (and the rest of its subject's run
--     becomes rows behind it), so the claims and the retry schedule carry
--     on as before, in order;
--   * a new event of a subject that already has a pending row is a row;
--   * a new event of a subject this server is sending right now is a row
--     born leased to it, which the subject's task takes next (p_busy);
--   * replays are rows, as before.
-- A server that dies holds events between settled_through and
-- fanned_out_through in memory only: whoever takes the window next starts
-- again from settled_through, skipping the events that have a row, and
-- sends the rest again with the same webhook-id (at least once).

ALTER TABLE webhook_endpoints
    ADD COLUMN settled_through bigint,
    ADD COLUMN window_lease uuid,
    ADD COLUMN window_leased_until timestamptz;
UPDATE webhook_endpoints SET settled_through = fanned_out_through;
ALTER TABLE webhook_endpoints
    ALTER COLUMN settled_through SET NOT NULL,
    ADD CONSTRAINT webhook_endpoints_settled_check
        CHECK (settled_through >= 0 AND settled_through <= fanned_out_through),
    ADD CONSTRAINT webhook_endpoints_window_check
        CHECK ((window_lease IS NULL) = (window_leased_until IS NULL));

-- An attempt without a delivery row is the first attempt of an event
-- handed out in memory, and it was delivered: anything else has a row.
ALTER TABLE webhook_attempts
    ALTER COLUMN delivery_id DROP NOT NULL,
    ADD CONSTRAINT webhook_attempts_without_delivery_check
        CHECK (delivery_id IS NOT NULL OR (outcome = 'delivered' AND attempt = 1));

-- Its endpoint's deletion takes it along, as its delivery's deletion took
-- the others (their foreign key). Not a foreign key of its own: checking
-- one locks the endpoint's row (FOR KEY SHARE) for every attempt written,
-- about 4 µs of PostgreSQL per delivered event (pg_stat_statements), and
-- the recorder writes attempts only while it holds the endpoint's window
-- and moves its cursor last: a recording that meets a deleted endpoint
-- writes nothing (ontab_webhook_attempted_window).
CREATE FUNCTION ontab_webhook_endpoint_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM webhook_attempts a
     WHERE a.business_id = OLD.business_id AND a.endpoint_id = OLD.id;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION ontab_webhook_endpoint_deleted() FROM PUBLIC;
GRANT DELETE ON webhook_attempts TO ontab_app;
CREATE TRIGGER webhook_endpoint_deleted AFTER DELETE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION ontab_webhook_endpoint_deleted();

-- Only rows' attempts are looked up by their delivery (the audit, the
-- cascade): the others need no entry there.
DROP INDEX webhook_attempts_of_delivery;
CREATE INDEX webhook_attempts_of_delivery ON webhook_attempts (business_id, delivery_id)
    WHERE delivery_id IS NOT NULL;

GRANT UPDATE (settled_through, window_lease, window_leased_until) ON webhook_endpoints TO ontab_app;
GRANT SELECT (settled_through, window_lease, window_leased_until, types) ON webhook_endpoints
    TO ontab_system;
GRANT SELECT (event_id) ON webhook_deliveries TO ontab_system;
GRANT SELECT (type) ON events TO ontab_system;
-- Retention removes the attempts that have no delivery row to go with.
GRANT SELECT (business_id, endpoint_id, delivery_id, attempted_at), DELETE
    ON webhook_attempts TO ontab_sequencer;

-- The fan-out of a business's endpoints, window by window.
--
-- p_known: the endpoints whose window this server holds in memory; one it
-- holds in the table but not in memory (its state was dropped) is taken
-- over like a stranger's. p_held_endpoints/p_held_min: for each, the
-- lowest sequence it still holds in memory (the cursor may not pass it).
-- p_busy_endpoints/p_busy_subjects: the subjects this server is sending
-- from memory now; their new events are handed out to their tasks' queues,
-- or, where p_busy_full says the queue is full, become rows leased to
-- this server. p_max: how many new
-- subjects may be handed out in memory (free slots); the others become
-- rows for the claim.
--
-- Answers a row per endpoint: whether this server holds its window now,
-- whether it just took it (over), its new fanned_out_through, the events handed out in memory (sequence
-- order), the rows created leased to it (for busy subjects), and how many
-- rows it created.
CREATE FUNCTION ontab_webhook_fan_out_window(
    p_limit int, p_lease uuid, p_lease_ms int, p_max int,
    p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[],
    p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[]
) RETURNS TABLE (endpoint_id uuid, held boolean, taken boolean, fanned bigint, handed uuid[],
                 leased uuid[], created bigint)
LANGUAGE plpgsql
SET random_page_cost = 1.1
AS $$
#variable_conflict use_column
DECLARE
    v_business uuid := ontab_tenant();
    v_now timestamptz := now();
    v_until timestamptz := now() + make_interval(secs => p_lease_ms / 1000.0);
    v_left int := greatest(coalesce(p_max, 0), 0);
    v_endpoint record;
    v_mine boolean;
    v_from bigint;
    v_through bigint;
    v_held_min bigint;
    v_busy uuid[];
    v_full boolean[];
    v_fast boolean;
    v_rows uuid[];
    v_leased uuid[];
    v_first_handed bigint;
    v_subjects_handed bigint;
    v_created bigint;
BEGIN
    -- The endpoints, and below the run of new sequences, are static
    -- statements planned once per session: a primary-key range and an
    -- index range in the index's order, whatever the tables' sizes (as
    -- EXECUTE, planning them was 200 µs of every call).
    FOR v_endpoint IN
        SELECT e.id, e.types, e.disabled, e.fanned_out_through, e.settled_through,
               e.window_lease, e.window_leased_until
          FROM webhook_endpoints e
         WHERE e.business_id = v_business
         ORDER BY e.id
           FOR NO KEY UPDATE
    LOOP
        endpoint_id := v_endpoint.id;
        handed := '{}'::uuid[];
        leased := '{}'::uuid[];
        created := 0;
        v_mine := v_endpoint.window_lease = p_lease AND v_endpoint.id = ANY (p_known);
        IF NOT v_mine AND v_endpoint.window_lease IS DISTINCT FROM p_lease
           AND v_endpoint.window_leased_until > v_now THEN
            -- Another server's window, still leased.
            held := false;
            taken := false;
            fanned := v_endpoint.fanned_out_through;
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- Taking a window over starts again from its settled cursor.
        v_from := CASE WHEN v_mine THEN v_endpoint.fanned_out_through
                       ELSE v_endpoint.settled_through END;
        SELECT max(run.sequence) INTO v_through
          FROM (SELECT ev.sequence, row_number() OVER (ORDER BY ev.sequence) AS nth
                  FROM events ev
                 WHERE ev.business_id = v_business AND ev.sequence > v_from
                 ORDER BY ev.sequence
                 LIMIT p_limit) AS run
         WHERE run.sequence = v_from + run.nth;
        v_through := coalesce(v_through, v_from);
        v_first_handed := NULL;
        IF v_through > v_from AND NOT v_endpoint.disabled THEN
            SELECT coalesce(array_agg(b.subject_id), '{}'::uuid[]),
                   coalesce(array_agg(coalesce(b.is_full, false)), '{}'::boolean[])
              INTO v_busy, v_full
              FROM unnest(p_busy_endpoints, p_busy_subjects, p_busy_full)
                   AS b(endpoint_id, subject_id, is_full)
             WHERE b.endpoint_id = v_endpoint.id;
            -- The common case, in one read of the new events: nothing pending
            -- at the endpoint and no queue full, so every new event is
            -- handed out (queued behind its subject's task when that
            -- subject is busy), provided its new subjects fit in p_max.
            -- Static statements: plain index ranges, planned once per
            -- session (each EXECUTE below is planned at every call).
            v_fast := NOT (true = ANY (v_full))
                      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                                       WHERE o.business_id = v_business
                                         AND o.endpoint_id = v_endpoint.id
                                         AND o.state = 'pending');
            IF v_fast THEN
                SELECT coalesce(array_agg(ev.id ORDER BY ev.sequence), '{}'::uuid[]),
                       min(ev.sequence),
                       count(DISTINCT coalesce(ev.subject_id, ev.business_id))
                         FILTER (WHERE NOT coalesce(ev.subject_id, ev.business_id) = ANY (v_busy))
                  INTO handed, v_first_handed, v_subjects_handed
                  FROM events ev
                 WHERE ev.business_id = v_business AND ev.sequence > v_from
                   AND ev.sequence <= v_through
                   AND (v_endpoint.types IS NULL OR ev.type = ANY (v_endpoint.types))
                   AND (v_mine OR NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                                               WHERE o.business_id = v_business
                                                 AND o.event_id = ev.id
                                                 AND o.endpoint_id = v_endpoint.id));
                v_rows := '{}'::uuid[];
                v_leased := '{}'::uuid[];
                IF v_subjects_handed > v_left THEN
                    v_fast := false;
                END IF;
            END IF;
            IF NOT v_fast THEN
                -- Each new subject's head among the pending rows, by one probe
                -- of the pending index (LATERAL ... LIMIT 1, as 0025). A subject
                -- with a pending row goes on as rows: leased to this server
                -- when it is sending that subject now and the head is its own,
                -- for the subject's task to send next. A subject this server
                -- is sending now with nothing pending is handed out in memory
                -- too, queued behind what its task sends ('queued'), unless its
                -- queue is full (p_busy_full: rows leased to it). The others,
                -- oldest first and as many as p_max, are handed out in memory,
                -- all their new events. After a takeover, events that already
                -- have a row here are left to it.
                EXECUTE
                    'WITH new AS MATERIALIZED (
                         SELECT ev.id, ev.sequence, coalesce(ev.subject_id, ev.business_id) AS subject_id
                           FROM events ev
                          WHERE ev.business_id = $1 AND ev.sequence > $3 AND ev.sequence <= $4
                            AND ($5::text[] IS NULL OR ev.type = ANY ($5::text[]))
                            AND ($6 OR NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                                                    WHERE o.business_id = $1 AND o.event_id = ev.id
                                                      AND o.endpoint_id = $2))
                     ), subjects AS (
                         SELECT n.subject_id, min(n.sequence) AS first
                           FROM new n GROUP BY n.subject_id
                     ), busy AS (
                         SELECT DISTINCT ON (b.subject_id) b.subject_id, b.is_full
                           FROM unnest($7::uuid[], $10::boolean[]) AS b(subject_id, is_full)
                     ), probed AS (
                         SELECT s.subject_id, s.first,
                                CASE WHEN h.id IS NOT NULL
                                          AND NOT (b.subject_id IS NOT NULL AND h.lease = $8)
                                     THEN ''row''
                                     WHEN b.subject_id IS NOT NULL AND (b.is_full OR h.id IS NOT NULL)
                                     THEN ''leased''
                                     WHEN b.subject_id IS NOT NULL THEN ''queued''
                                     WHEN h.id IS NOT NULL THEN ''row''
                                     ELSE ''memory'' END AS class
                           FROM subjects s
                           LEFT JOIN busy b ON b.subject_id = s.subject_id
                           LEFT JOIN LATERAL (
                                SELECT o.id, o.lease
                                  FROM webhook_deliveries o
                                 WHERE o.business_id = $1 AND o.endpoint_id = $2
                                   AND o.subject_id = s.subject_id AND o.state = ''pending''
                                 ORDER BY o.sequence, o.id
                                 LIMIT 1) h ON true
                     ), classed AS (
                         SELECT p.subject_id,
                                CASE WHEN p.class <> ''memory'' THEN p.class
                                     WHEN row_number() OVER (PARTITION BY p.class ORDER BY p.first) <= $9
                                     THEN ''memory''
                                     ELSE ''row'' END AS class
                           FROM probed p
                     )
                     SELECT coalesce(array_agg(n.id ORDER BY n.sequence)
                                       FILTER (WHERE c.class IN (''memory'', ''queued'')), ''{}''::uuid[]),
                            coalesce(array_agg(n.id) FILTER (WHERE c.class = ''row''), ''{}''::uuid[]),
                            coalesce(array_agg(n.id) FILTER (WHERE c.class = ''leased''), ''{}''::uuid[]),
                            min(n.sequence) FILTER (WHERE c.class IN (''memory'', ''queued'')),
                            count(DISTINCT n.subject_id) FILTER (WHERE c.class = ''memory'')
                       FROM new n
                       JOIN classed c ON c.subject_id = n.subject_id'
                    INTO handed, v_rows, v_leased, v_first_handed, v_subjects_handed
                    USING v_business, v_endpoint.id, v_from, v_through, v_endpoint.types, v_mine,
                          v_busy, p_lease, v_left, v_full;
            END IF;
            v_left := v_left - coalesce(v_subjects_handed, 0);
            IF cardinality(v_rows) + cardinality(v_leased) > 0 THEN
                -- One INSERT for the rows, those of busy subjects leased
                -- (parameters only in its CASE: Citus routes no STABLE
                -- call there, 0019).
                EXECUTE
                    'WITH added AS (
                         INSERT INTO webhook_deliveries
                                (business_id, id, endpoint_id, event_id, sequence, subject_id,
                                 lease, leased_until)
                         SELECT ev.business_id, gen_random_uuid(), $2, ev.id, ev.sequence,
                                coalesce(ev.subject_id, ev.business_id),
                                CASE WHEN ev.id = ANY ($5::uuid[]) THEN $6::uuid END,
                                CASE WHEN ev.id = ANY ($5::uuid[]) THEN $7::timestamptz END
                           FROM events ev
                          WHERE ev.business_id = $1 AND ev.sequence > $3 AND ev.sequence <= $4
                            AND (ev.id = ANY ($5::uuid[]) OR ev.id = ANY ($8::uuid[]))
                         RETURNING id, lease
                     )
                     SELECT count(*),
                            coalesce(array_agg(added.id) FILTER (WHERE added.lease IS NOT NULL),
                                     ''{}''::uuid[])
                       FROM added'
                    INTO v_created, leased
                    USING v_business, v_endpoint.id, v_from, v_through, v_leased, p_lease, v_until,
                          v_rows;
                created := v_created;
            END IF;
        END IF;
        -- The cursor may pass every event but those still held in memory.
        SELECT min(h.held_min) INTO v_held_min
          FROM unnest(p_held_endpoints, p_held_min) AS h(endpoint_id, held_min)
         WHERE h.endpoint_id = v_endpoint.id AND v_mine;
        UPDATE webhook_endpoints e
           SET fanned_out_through = v_through,
               settled_through = greatest(least(e.settled_through, v_through),
                                          least(v_through, v_first_handed - 1, v_held_min - 1)),
               window_lease = p_lease,
               window_leased_until = v_until
         WHERE e.business_id = v_business AND e.id = v_endpoint.id;
        held := true;
        taken := NOT v_mine;
        fanned := v_through;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE FUNCTION ontab_webhook_fan_out_window_for(
    p_limit int, p_lease uuid, p_lease_ms int, p_max int,
    p_known uuid[], p_held_endpoints uuid[], p_held_min bigint[],
    p_busy_endpoints uuid[], p_busy_subjects uuid[], p_busy_full boolean[], p_business uuid
) RETURNS TABLE (endpoint_id uuid, held boolean, taken boolean, fanned bigint, handed uuid[],
                 leased uuid[], created bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN QUERY
    SELECT f.endpoint_id, f.held, f.taken, f.fanned, f.handed, f.leased, f.created
      FROM ontab_webhook_fan_out_window(p_limit, p_lease, p_lease_ms, p_max, p_known,
                                        p_held_endpoints, p_held_min, p_busy_endpoints,
                                        p_busy_subjects, p_busy_full) f;
END
$$;
REVOKE ALL ON FUNCTION ontab_webhook_fan_out_window(int, uuid, int, int, uuid[], uuid[], bigint[], uuid[], uuid[], boolean[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_fan_out_window(int, uuid, int, int, uuid[], uuid[], bigint[], uuid[], uuid[], boolean[]) TO ontab_app;
REVOKE ALL ON FUNCTION ontab_webhook_fan_out_window_for(int, uuid, int, int, uuid[], uuid[], bigint[], uuid[], uuid[], boolean[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_fan_out_window_for(int, uuid, int, int, uuid[], uuid[], bigint[], uuid[], uuid[], boolean[], uuid) TO ontab_app;

-- Recording what was sent out of windows, in the recorder's transaction.
--
-- p_settle_*: the endpoints whose windows this recording concerns, each
-- with how far its cursor may move (below the oldest event the server
-- still holds for it). Each is locked in id order, renewed and moved on
-- only while this server holds its window; the others come back as
-- ('lost', endpoint), and nothing of theirs is written (whoever holds the
-- window now sends those events again).
-- p_endpoints ... p_attempted_at: one attempt per event sent from memory.
-- A 2xx writes only the attempt. Anything else writes the event's row
-- (p_row_ids) with that first attempt counted, as the row recorder would
-- have: retrying on the schedule, given up, or 'disabled' on 410 Gone
-- (which disables the endpoint). Ids come from the caller, so writing the
-- same recording again after an error writes nothing twice.
-- p_spill_*: events handed out in memory and not sent (behind one that
-- failed, or past the budget of a lease): pending rows, for the claim.
-- p_release_ids: rows leased to this server that it lets go (they were
-- leased for a subject whose task stopped).
--
-- Answers ('attempt', endpoint, event, outcome) per attempt that was not
-- a 2xx (on Citus, per attempt; outcome NULL when the window was lost),
-- and ('lost', endpoint, NULL, NULL).
CREATE FUNCTION ontab_webhook_attempted_window(
    p_lease uuid, p_lease_ms int, p_schedule bigint[],
    p_settle_endpoints uuid[], p_settle_through bigint[],
    p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[],
    p_status int[], p_error text[], p_duration_ms int[], p_attempted_at timestamptz[],
    p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[],
    p_release_ids uuid[], p_rewrite boolean
) RETURNS TABLE (kind text, endpoint_id uuid, id uuid, outcome text)
LANGUAGE plpgsql
SET random_page_cost = 1.1
AS $$
#variable_conflict use_column
DECLARE
    v_business uuid := ontab_tenant();
    v_now timestamptz := now();
    v_until timestamptz := now() + make_interval(secs => p_lease_ms / 1000.0);
    -- On Citus, one row at a time (0019).
    row_by_row boolean := to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
    v_owned uuid[] := '{}'::uuid[];
    v_settle record;
    a record;
    v_outcome text;
    v_next_at timestamptz;
    v_gone uuid[] := '{}'::uuid[];
BEGIN
    -- The windows still this server's, read without a lock: the lock on
    -- an endpoint row (which the fan-out waits for) is taken last, by the
    -- UPDATE that moves its cursor, and held only until COMMIT.
    SELECT coalesce(array_agg(e.id), '{}'::uuid[]) INTO v_owned
      FROM webhook_endpoints e
     WHERE e.business_id = v_business AND e.id = ANY (p_settle_endpoints)
       AND e.window_lease = p_lease;
    FOR v_settle IN
        SELECT DISTINCT s.endpoint_id
          FROM unnest(p_settle_endpoints) AS s(endpoint_id)
         WHERE NOT s.endpoint_id = ANY (v_owned)
    LOOP
        kind := 'lost';
        endpoint_id := v_settle.endpoint_id;
        id := NULL;
        outcome := NULL;
        RETURN NEXT;
    END LOOP;

    -- What was delivered: its attempt, and nothing else. Written again
    -- (p_rewrite) after an error, what the first write did commit is
    -- skipped; the first write pays no conflict check. Static statements
    -- (they read no table): planned once per session.
    IF NOT row_by_row AND NOT p_rewrite THEN
        INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id, attempt,
                                      status_code, error, duration_ms, outcome, next_attempt_at,
                                      attempted_at)
        SELECT v_business, i.attempt_id, i.endpoint_id, NULL, i.event_id, 1, i.status,
               left(i.error, 1000), greatest(i.duration_ms, 0), 'delivered', NULL, i.attempted_at
          FROM unnest(p_endpoints, p_events, p_attempt_ids, p_status, p_error, p_duration_ms,
                      p_attempted_at)
               AS i(endpoint_id, event_id, attempt_id, status, error, duration_ms, attempted_at)
         WHERE i.status BETWEEN 200 AND 299 AND i.endpoint_id = ANY (v_owned);
    ELSIF NOT row_by_row THEN
        INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id, attempt,
                                      status_code, error, duration_ms, outcome, next_attempt_at,
                                      attempted_at)
        SELECT v_business, i.attempt_id, i.endpoint_id, NULL, i.event_id, 1, i.status,
               left(i.error, 1000), greatest(i.duration_ms, 0), 'delivered', NULL, i.attempted_at
          FROM unnest(p_endpoints, p_events, p_attempt_ids, p_status, p_error, p_duration_ms,
                      p_attempted_at)
               AS i(endpoint_id, event_id, attempt_id, status, error, duration_ms, attempted_at)
         WHERE i.status BETWEEN 200 AND 299 AND i.endpoint_id = ANY (v_owned)
        ON CONFLICT DO NOTHING;
    END IF;
    -- The others one at a time (they are few), and on Citus all. Only
    -- these are answered: the caller knows a 2xx of a window it still
    -- holds was delivered.
    FOR a IN
        SELECT i.endpoint_id, i.event_id, i.row_id, i.attempt_id, i.status, i.error, i.duration_ms,
               i.attempted_at
          FROM unnest(p_endpoints, p_events, p_row_ids, p_attempt_ids, p_status, p_error,
                      p_duration_ms, p_attempted_at)
               AS i(endpoint_id, event_id, row_id, attempt_id, status, error, duration_ms, attempted_at)
         WHERE row_by_row OR NOT coalesce(i.status BETWEEN 200 AND 299, false)
    LOOP
        kind := 'attempt';
        endpoint_id := a.endpoint_id;
        id := a.event_id;
        IF NOT a.endpoint_id = ANY (v_owned) THEN
            outcome := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        v_outcome := CASE WHEN a.status BETWEEN 200 AND 299 THEN 'delivered'
                          WHEN a.status = 410 THEN 'disabled'
                          WHEN coalesce(cardinality(p_schedule), 0) >= 1 THEN 'retrying'
                          ELSE 'gave_up' END;
        IF v_outcome = 'delivered' THEN
            IF row_by_row THEN
                INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id,
                                              attempt, status_code, error, duration_ms, outcome,
                                              next_attempt_at, attempted_at)
                VALUES (v_business, a.attempt_id, a.endpoint_id, NULL, a.event_id, 1, a.status,
                        left(a.error, 1000), greatest(a.duration_ms, 0), 'delivered', NULL,
                        a.attempted_at)
                ON CONFLICT DO NOTHING;
            END IF;
        ELSE
            v_next_at := CASE v_outcome
                              WHEN 'disabled' THEN v_now
                              WHEN 'retrying' THEN v_now + make_interval(secs => p_schedule[1] / 1000.0)
                              ELSE v_now
                         END;
            -- The event's row, as if the row recorder had recorded this
            -- first attempt (plain values: Citus, 0014).
            INSERT INTO webhook_deliveries (business_id, id, endpoint_id, event_id, sequence,
                                            subject_id, state, attempts, next_attempt_at,
                                            finished_at)
            SELECT ev.business_id, a.row_id, a.endpoint_id, ev.id, ev.sequence,
                   coalesce(ev.subject_id, ev.business_id),
                   CASE WHEN v_outcome = 'gave_up' THEN 'failed' ELSE 'pending' END, 1, v_next_at,
                   CASE WHEN v_outcome = 'gave_up' THEN v_now END
              FROM events ev
             WHERE ev.business_id = v_business AND ev.id = a.event_id
            ON CONFLICT DO NOTHING;
            IF FOUND THEN
                INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id,
                                              attempt, status_code, error, duration_ms, outcome,
                                              next_attempt_at, attempted_at)
                VALUES (v_business, a.attempt_id, a.endpoint_id, a.row_id, a.event_id, 1, a.status,
                        left(a.error, 1000), greatest(a.duration_ms, 0), v_outcome,
                        CASE WHEN v_outcome IN ('retrying', 'disabled') THEN v_next_at END,
                        a.attempted_at)
                ON CONFLICT DO NOTHING;
            END IF;
            IF v_outcome = 'disabled' THEN
                v_gone := v_gone || a.endpoint_id;
            END IF;
        END IF;
        outcome := v_outcome;
        RETURN NEXT;
    END LOOP;
    IF cardinality(v_gone) > 0 THEN
        UPDATE webhook_endpoints e
           SET disabled = true, disabled_reason = 'gone', updated_at = v_now
         WHERE e.business_id = v_business AND e.id = ANY (v_gone) AND NOT e.disabled;
    END IF;

    -- Events handed out and not sent: pending rows, behind their subject's.
    FOR a IN
        SELECT s.endpoint_id, s.event_id, s.row_id
          FROM unnest(p_spill_endpoints, p_spill_events, p_spill_ids) AS s(endpoint_id, event_id, row_id)
         WHERE s.endpoint_id = ANY (v_owned)
    LOOP
        INSERT INTO webhook_deliveries (business_id, id, endpoint_id, event_id, sequence, subject_id)
        SELECT ev.business_id, a.row_id, a.endpoint_id, ev.id, ev.sequence,
               coalesce(ev.subject_id, ev.business_id)
          FROM events ev
         WHERE ev.business_id = v_business AND ev.id = a.event_id
        ON CONFLICT DO NOTHING;
    END LOOP;

    IF coalesce(cardinality(p_release_ids), 0) > 0 THEN
        UPDATE webhook_deliveries w
           SET lease = NULL, leased_until = NULL
         WHERE w.business_id = v_business AND w.id = ANY (p_release_ids)
           AND w.state = 'pending' AND w.lease = p_lease;
    END IF;

    -- Renewed, and moved on, in id order. A window lost since the read
    -- above (its lease expired and another server took it) undoes this
    -- recording, so that nothing is written for it: written again, it
    -- is lost from the start.
    FOR v_settle IN
        SELECT s.endpoint_id, max(s.through) AS through
          FROM unnest(p_settle_endpoints, p_settle_through) AS s(endpoint_id, through)
         WHERE s.endpoint_id = ANY (v_owned)
         GROUP BY s.endpoint_id
         ORDER BY s.endpoint_id
    LOOP
        UPDATE webhook_endpoints e
           SET settled_through = greatest(e.settled_through,
                                          least(v_settle.through, e.fanned_out_through)),
               window_leased_until = v_until
         WHERE e.business_id = v_business AND e.id = v_settle.endpoint_id
           AND e.window_lease = p_lease;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the window of webhook endpoint % was taken over meanwhile',
                v_settle.endpoint_id
                USING ERRCODE = '40001';
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION ontab_webhook_attempted_window_for(
    p_lease uuid, p_lease_ms int, p_schedule bigint[],
    p_settle_endpoints uuid[], p_settle_through bigint[],
    p_endpoints uuid[], p_events uuid[], p_row_ids uuid[], p_attempt_ids uuid[],
    p_status int[], p_error text[], p_duration_ms int[], p_attempted_at timestamptz[],
    p_spill_endpoints uuid[], p_spill_events uuid[], p_spill_ids uuid[],
    p_release_ids uuid[], p_rewrite boolean, p_business uuid
) RETURNS TABLE (kind text, endpoint_id uuid, id uuid, outcome text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN QUERY
    SELECT w.kind, w.endpoint_id, w.id, w.outcome
      FROM ontab_webhook_attempted_window(p_lease, p_lease_ms, p_schedule, p_settle_endpoints,
                                          p_settle_through, p_endpoints, p_events, p_row_ids,
                                          p_attempt_ids, p_status, p_error, p_duration_ms,
                                          p_attempted_at, p_spill_endpoints, p_spill_events,
                                          p_spill_ids, p_release_ids, p_rewrite) w;
END
$$;
REVOKE ALL ON FUNCTION ontab_webhook_attempted_window(uuid, int, bigint[], uuid[], bigint[], uuid[], uuid[], uuid[], uuid[], int[], text[], int[], timestamptz[], uuid[], uuid[], uuid[], uuid[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_attempted_window(uuid, int, bigint[], uuid[], bigint[], uuid[], uuid[], uuid[], uuid[], int[], text[], int[], timestamptz[], uuid[], uuid[], uuid[], uuid[], boolean) TO ontab_app;
REVOKE ALL ON FUNCTION ontab_webhook_attempted_window_for(uuid, int, bigint[], uuid[], bigint[], uuid[], uuid[], uuid[], uuid[], int[], text[], int[], timestamptz[], uuid[], uuid[], uuid[], uuid[], boolean, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_attempted_window_for(uuid, int, bigint[], uuid[], bigint[], uuid[], uuid[], uuid[], uuid[], int[], text[], int[], timestamptz[], uuid[], uuid[], uuid[], uuid[], boolean, uuid) TO ontab_app;

-- The row-only fan-out (tests and tools, 0006) keeps the settled cursor
-- with it: everything it fans out is a row. It leaves a window some
-- server holds alone.
CREATE OR REPLACE FUNCTION ontab_webhook_fan_out(p_limit int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_created bigint;
BEGIN
    v_created := (SELECT f.created FROM ontab_webhook_fan_out_leasing(p_limit, NULL, 0, 0) f);
    UPDATE webhook_endpoints e
       SET settled_through = e.fanned_out_through
     WHERE e.business_id = ontab_tenant() AND e.window_lease IS NULL
       AND e.settled_through <> e.fanned_out_through;
    RETURN v_created;
END
$$;

DROP FUNCTION ontab_webhook_fan_out_due(int);

-- Businesses with something to fan out for this server: events after an
-- endpoint's cursor, where the window is free, this server's, or expired;
-- and expired windows whose holder left events unsettled.
GRANT CREATE ON SCHEMA public TO ontab_system;
CREATE FUNCTION ontab_webhook_fan_out_due(p_limit int, p_lease uuid)
RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT DISTINCT e.business_id
      FROM public.webhook_endpoints e
     CROSS JOIN LATERAL (SELECT ev.sequence
                           FROM public.events ev
                          WHERE ev.business_id = e.business_id
                            AND ev.sequence > e.fanned_out_through
                          ORDER BY ev.sequence
                          LIMIT 1) AS next_event
     WHERE (e.window_lease IS NULL OR e.window_lease = p_lease OR e.window_leased_until <= now())
       AND next_event.sequence = e.fanned_out_through + 1
    UNION
    SELECT e.business_id
      FROM public.webhook_endpoints e
     WHERE e.window_lease IS DISTINCT FROM p_lease AND e.window_leased_until <= now()
       AND e.settled_through < e.fanned_out_through AND NOT e.disabled
     LIMIT p_limit;
END
$$;
ALTER FUNCTION ontab_webhook_fan_out_due(int, uuid) OWNER TO ontab_system;
REVOKE ALL ON FUNCTION ontab_webhook_fan_out_due(int, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_fan_out_due(int, uuid) TO ontab_app;

-- What an endpoint still owes: its pending rows, and the events after its
-- settled cursor that it takes and that have no row.
CREATE OR REPLACE FUNCTION ontab_webhook_backlog()
RETURNS TABLE (endpoint_id uuid, pending bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT e.id,
           (SELECT count(*) FROM public.webhook_deliveries d
             WHERE d.business_id = e.business_id AND d.endpoint_id = e.id AND d.state = 'pending')
           + (SELECT count(*) FROM public.events ev
               WHERE ev.business_id = e.business_id AND ev.sequence > e.settled_through
                 AND (e.types IS NULL OR ev.type = ANY (e.types))
                 AND NOT EXISTS (SELECT 1 FROM public.webhook_deliveries o
                                  WHERE o.business_id = ev.business_id AND o.event_id = ev.id
                                    AND o.endpoint_id = e.id))
      FROM public.webhook_endpoints e
     WHERE NOT e.disabled
$$;
REVOKE CREATE ON SCHEMA public FROM ontab_system;

-- Events stay until every endpoint's settled cursor has passed them (the
-- fanned-out ones above it may have to be sent again) and no pending row
-- of an enabled endpoint needs them.
CREATE OR REPLACE FUNCTION ontab_event_prune_limit(p_business uuid) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN least(
        (SELECT min(e.settled_through) + 1
           FROM webhook_endpoints e
          WHERE e.business_id = p_business),
        (SELECT min(d.sequence)
           FROM webhook_deliveries d
           JOIN webhook_endpoints e ON e.business_id = d.business_id AND e.id = d.endpoint_id
          WHERE d.business_id = p_business AND d.state = 'pending' AND NOT e.disabled));
END
$$;

-- Retention: the attempts that have no delivery row go with their age, as
-- the others go with their events (through their rows).
GRANT SELECT (business_id, id) ON webhook_endpoints TO ontab_sequencer;
CREATE OR REPLACE FUNCTION ontab_prune_events(p_before timestamptz, p_limit int) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    ceiling bigint := ontab_event_prune_limit(tenant);
    v_stop bigint;
    v_last bigint;
    through bigint;
    removed bigint;
    r record;
BEGIN
    PERFORM 1 FROM event_sequences s WHERE s.business_id = tenant FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    -- One endpoint at a time, each a range of the attempts' listing index.
    FOR r IN SELECT e.id FROM webhook_endpoints e WHERE e.business_id = tenant ORDER BY e.id LOOP
        DELETE FROM webhook_attempts a
         WHERE a.business_id = tenant AND a.endpoint_id = r.id AND a.attempted_at < p_before
           AND a.delivery_id IS NULL;
    END LOOP;
    -- Among the oldest p_limit, the first that must stay (written since
    -- p_before, or still owed to a webhook) and the last.
    SELECT min(o.sequence) FILTER (WHERE o.created_at >= p_before OR o.sequence >= ceiling),
           max(o.sequence)
      INTO v_stop, v_last
      FROM (SELECT e.sequence, e.created_at
              FROM events e
             WHERE e.business_id = tenant AND e.sequence IS NOT NULL
             ORDER BY e.sequence
             LIMIT p_limit) o;
    through := least(v_last, v_stop - 1);
    IF through IS NULL THEN
        RETURN 0;
    END IF;
    FOR r IN
        SELECT e.type, count(*) AS pruned
          FROM events e
         WHERE e.business_id = tenant AND e.sequence <= through
         GROUP BY e.type
         ORDER BY e.type
    LOOP
        INSERT INTO events_pruned AS p (business_id, type, pruned)
        VALUES (tenant, r.type, r.pruned)
        ON CONFLICT (business_id, type) DO UPDATE SET pruned = p.pruned + excluded.pruned;
    END LOOP;
    DELETE FROM events e WHERE e.business_id = tenant AND e.sequence <= through;
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed > 0 THEN
        UPDATE event_sequences SET pruned_through = through WHERE business_id = tenant;
    END IF;
    RETURN removed;
END
$$;
