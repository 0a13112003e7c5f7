-- Background work that Citus refused.
--
-- 1. The overdue scan (0005), in steps Citus can run on the node that holds
-- the business.
--
-- Delegated there by ontab_record_overdue_for (0015), the scan's one
-- statement was refused: its tables were joined by each other's
-- business_id (x.business_id = c.business_id) rather than each filtered by
-- the tenant, which Citus plans as a join across shards ("complex joins
-- are only supported when all distributed tables are co-located and
-- joined on their distribution columns"), and its data-modifying WITH
-- wrote with INSERT ... SELECT, which Citus runs as COPY, refused under
-- row level security. Now every table is filtered by the tenant itself,
-- the purchases found are read first, and each is marked and reported by
-- an INSERT ... VALUES of its own. What it finds and emits is the same,
-- in the same order (due_at, then order), once per purchase: a
-- concurrent scanner's row still wins the primary key of overdue_emitted,
-- and this one then emits nothing for that purchase.
CREATE OR REPLACE FUNCTION ontab_record_overdue(p_limit int) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    emitted bigint := 0::bigint;
    d record;
    v_customer jsonb;
BEGIN
    FOR d IN
        SELECT l.customer_id, l.order_id, l.due_at,
               least(l.amount, l.purchases_to_date - h.credited) AS unsettled
          FROM customers c
         CROSS JOIN LATERAL (
               SELECT x.purchases_to_date - x.balance_after AS credited
                 FROM credit_ledger x
                WHERE x.business_id = tenant AND x.customer_id = c.id
                ORDER BY x.seq DESC LIMIT 1) h
          JOIN credit_ledger l
            ON l.business_id = tenant AND l.customer_id = c.id
           AND l.kind = 'purchase' AND l.amount > 0 AND l.purchases_to_date > h.credited
         WHERE c.business_id = tenant AND l.due_at <= now()
           AND NOT EXISTS (SELECT 1 FROM overdue_emitted o
                            WHERE o.business_id = tenant AND o.order_id = l.order_id)
         ORDER BY l.due_at, l.order_id
         LIMIT p_limit
    LOOP
        INSERT INTO overdue_emitted (business_id, order_id, customer_id)
        VALUES (tenant, d.order_id, d.customer_id)
        ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        v_customer := ontab_customer_json(tenant, d.customer_id);
        INSERT INTO events (business_id, id, type, subject_id, data)
        VALUES (tenant, ontab_uuid_v7(), 'customer.overdue', d.customer_id,
                v_customer || jsonb_build_object('overdue', jsonb_build_object(
                    'order_id', d.order_id, 'due_at', ontab_json_time(d.due_at),
                    'unsettled_amount', d.unsettled)));
        emitted := emitted + 1;
    END LOOP;
    RETURN emitted;
END
$$;

-- 2. Recording webhook attempts (0010) filtered every table by
-- ontab_tenant(), a function call: Citus cannot tell from it which shard
-- a statement is for, so it planned the locking read across shards and
-- refused it ("could not run distributed query with FOR UPDATE/SHARE
-- commands"). The tenant is now read once into a variable, a value to
-- Citus; the function is otherwise the same (owner and grants kept).
CREATE OR REPLACE FUNCTION ontab_webhook_attempted_batch(
    p_lease uuid, p_lease_ms int, p_schedule bigint[],
    p_deliveries uuid[], p_status int[], p_error text[], p_duration_ms int[],
    p_attempted_at timestamptz[], p_continue boolean[]
) RETURNS TABLE (delivery_id uuid, outcome text, next_delivery_id uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    -- The tenant as a value, not a call: Citus routes a statement to the
    -- shard of the business only when it can see which business.
    v_business uuid := ontab_tenant();
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
         WHERE d.business_id = v_business AND d.id = ANY (p_deliveries)
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
         WHERE d.business_id = v_business AND d.id = ANY (p_deliveries) AND d.id = t.id
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
         WHERE e.business_id = v_business
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
        ON e.business_id = v_business AND e.id = done.endpoint_id AND NOT e.disabled
     CROSS JOIN LATERAL (
           SELECT d.id, d.next_attempt_at, d.leased_until
             FROM webhook_deliveries d
            WHERE d.business_id = v_business AND d.endpoint_id = done.endpoint_id
              AND d.subject_id = done.subject_id AND d.state = 'pending'
            ORDER BY d.sequence, d.id
            LIMIT 1) n
     WHERE n.next_attempt_at <= now()
       AND (n.leased_until IS NULL OR n.leased_until <= now());

    RETURN QUERY
    WITH leased AS (
        UPDATE webhook_deliveries d
           SET lease = p_lease, leased_until = now() + make_interval(secs => p_lease_ms / 1000.0)
         WHERE d.business_id = v_business AND d.id = ANY (coalesce(v_heads, '{}'))
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
