-- Webhook delivery and NATS publishing on Citus.
--
-- 1. The delivery bookkeeping as functions of the business, as the use
-- cases are (0015): ontab_webhook_fan_out_leasing_for and
-- ontab_webhook_attempted_batch_for check that the business is the
-- transaction's tenant and do what their namesakes do. On one PostgreSQL
-- that is all. On Citus `ontab migrate` distributes every ontab_*_for
-- function by p_business (src/db/citus.rs), so the fan-out and the
-- recording of a round of attempts each run whole on the node that holds
-- the business, one call instead of a round trip from the coordinator
-- per statement.
--
-- 2. Recording a round of attempts was one statement whose data-modifying
-- WITH inserted the attempts by INSERT ... SELECT, and put now() inside
-- CASE. Citus runs such an INSERT by way of the coordinator, which a call
-- delegated to a worker may not reach ("failure on connection marked as
-- essential"), and refuses a STABLE call inside CASE in a modification.
-- Now each delivery is locked, updated and logged by statements of its
-- own that name the business, and the time is read once into a variable
-- (now() is the transaction's start either way). What is recorded, leased
-- and answered is the same as 0018's.
--
-- 3. Retention (0005) deleted with a data-modifying WITH and counted what
-- it removed with an INSERT ... SELECT: the same refusal. It now finds the
-- sequence to prune through, counts per type, then deletes, each a
-- statement on the business's shard; the event_sequences row it locks
-- first keeps the three consistent.
--
-- 4. Finding the businesses with events for NATS joined the businesses
-- (a reference table on Citus) to events and nats_cursors through a
-- correlated subquery, which Citus cannot plan ("complex joins are only
-- supported when ..."). It is now two queries Citus can: the cursors
-- whose next event exists (a join of two tables distributed alike, by
-- their distribution column), then the businesses that have no cursor
-- yet. Those are returned whether or not they have events; the publisher
-- creates the cursor of each it visits, so every business is visited
-- once that way and from then on only when it has something to publish.

CREATE OR REPLACE FUNCTION ontab_webhook_attempted_batch(
    p_lease uuid, p_lease_ms int, p_schedule bigint[],
    p_deliveries uuid[], p_status int[], p_error text[], p_duration_ms int[],
    p_attempted_at timestamptz[], p_continue boolean[]
) RETURNS TABLE (delivery_id uuid, outcome text, next_delivery_id uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    -- The tenant and the time as values: Citus routes a statement to the
    -- business's shard only when it sees the business, and cannot put a
    -- STABLE call inside CASE. now() is the transaction's start either way.
    v_business uuid := ontab_tenant();
    v_now timestamptz := now();
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
    v_head uuid;
    v_leased_ids uuid[] := '{}'::uuid[];
    v_leased_endpoints uuid[] := '{}'::uuid[];
    v_leased_subjects uuid[] := '{}'::uuid[];
BEGIN
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

    IF cardinality(v_ids) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(v_gone) > 0 THEN
        UPDATE webhook_endpoints e
           SET disabled = true, disabled_reason = 'gone', updated_at = v_now
         WHERE e.business_id = v_business AND e.id = ANY (v_gone) AND NOT e.disabled;
    END IF;

    -- Each delivered subject's head is now its next delivery (these
    -- statements see what the ones above wrote): found by one probe of the
    -- pending index per subject, leased by primary key when it is due and
    -- its endpoint still enabled.
    SELECT coalesce(array_agg(e.id), '{}'::uuid[]) INTO v_live
      FROM webhook_endpoints e
     WHERE e.business_id = v_business AND e.id = ANY (v_endpoints) AND NOT e.disabled;
    FOR v_done IN
        SELECT DISTINCT r.endpoint_id, r.subject_id
          FROM unnest(v_outcomes, v_endpoints, v_subjects, v_continue)
               AS r(outcome, endpoint_id, subject_id, cont)
         WHERE r.outcome = 'delivered' AND r.cont AND r.endpoint_id = ANY (v_live)
         ORDER BY r.endpoint_id, r.subject_id
    LOOP
        SELECT n.id INTO v_head
          FROM webhook_deliveries n
         WHERE n.business_id = v_business AND n.endpoint_id = v_done.endpoint_id
           AND n.subject_id = v_done.subject_id AND n.state = 'pending'
         ORDER BY n.sequence, n.id
         LIMIT 1;
        CONTINUE WHEN v_head IS NULL;
        UPDATE webhook_deliveries w
           SET lease = p_lease, leased_until = v_now + make_interval(secs => p_lease_ms / 1000.0)
         WHERE w.business_id = v_business AND w.id = v_head
           AND w.finished_at IS NULL AND w.next_attempt_at <= v_now
           AND (w.leased_until IS NULL OR w.leased_until <= v_now);
        IF FOUND THEN
            v_leased_ids := v_leased_ids || v_head;
            v_leased_endpoints := v_leased_endpoints || v_done.endpoint_id;
            v_leased_subjects := v_leased_subjects || v_done.subject_id;
        END IF;
    END LOOP;

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

CREATE FUNCTION ontab_webhook_fan_out_leasing_for(
    p_limit int, p_lease uuid, p_lease_ms int, p_max int, p_business uuid,
    OUT created bigint, OUT leased uuid[]
)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    SELECT f.created, f.leased INTO created, leased
      FROM ontab_webhook_fan_out_leasing(p_limit, p_lease, p_lease_ms, p_max) f;
END
$$;
REVOKE ALL ON FUNCTION ontab_webhook_fan_out_leasing_for(int, uuid, int, int, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_fan_out_leasing_for(int, uuid, int, int, uuid) TO ontab_app;

CREATE FUNCTION ontab_webhook_attempted_batch_for(
    p_lease uuid, p_lease_ms int, p_schedule bigint[],
    p_deliveries uuid[], p_status int[], p_error text[], p_duration_ms int[],
    p_attempted_at timestamptz[], p_continue boolean[], p_business uuid
) RETURNS TABLE (delivery_id uuid, outcome text, next_delivery_id uuid)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ontab_require_business(p_business);
    RETURN QUERY
    SELECT a.delivery_id, a.outcome, a.next_delivery_id
      FROM ontab_webhook_attempted_batch(p_lease, p_lease_ms, p_schedule, p_deliveries, p_status,
                                         p_error, p_duration_ms, p_attempted_at, p_continue) a;
END
$$;
REVOKE ALL ON FUNCTION ontab_webhook_attempted_batch_for(uuid, int, bigint[], uuid[], int[], text[], int[], timestamptz[], boolean[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_attempted_batch_for(uuid, int, bigint[], uuid[], int[], text[], int[], timestamptz[], boolean[], uuid) TO ontab_app;

CREATE OR REPLACE FUNCTION ontab_nats_due(p_limit integer)
RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    found_due bigint;
BEGIN
    RETURN QUERY
    SELECT c.business_id
      FROM public.nats_cursors c
     WHERE EXISTS (SELECT 1 FROM public.events ev
                    WHERE ev.business_id = c.business_id
                      AND ev.sequence = c.published_through + 1)
     LIMIT p_limit;
    GET DIAGNOSTICS found_due = ROW_COUNT;
    RETURN QUERY
    SELECT b.id
      FROM public.businesses b
     WHERE b.id NOT IN (SELECT c.business_id FROM public.nats_cursors c)
     LIMIT greatest(p_limit - found_due, 0);
END
$$;

CREATE OR REPLACE FUNCTION ontab_prune_events(p_before timestamptz, p_limit int) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
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
