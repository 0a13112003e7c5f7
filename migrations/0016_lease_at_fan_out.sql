-- Fan-out leases what it creates.
--
-- A delivery used to reach its task in three transactions after its event
-- was sequenced: the fan-out created it, a global claim (across tenants)
-- leased it, and a tenant transaction read its body. In the uncontended
-- benchmark most subjects have one pending delivery at a time, so nearly
-- every delivery paid for all three (bench/run.sh uncontended-webhook,
-- docs/benchmarks.md: the claim 42 µs and reading bodies 56 µs per
-- purchase, beside the fan-out's 80). Now the fan-out leases, in its own
-- transaction, each new delivery that heads its (endpoint, subject), up to
-- the slots the caller has free, and the caller reads their bodies before
-- it commits. The global claim stays for what this leaves: a subject
-- whose earlier delivery is still pending, retries coming due, expired
-- leases, and deliveries beyond the free slots.
--
-- Order per (endpoint, subject) is kept as the claim keeps it: a new
-- delivery is leased only when no pending delivery of its endpoint and
-- subject has a lower sequence (every older one is lower: the endpoint's
-- cursor only moves forward, under the endpoint's row lock). A recorder
-- finishing that older delivery concurrently either committed before this
-- statement's snapshot (then the new one is the head, and leased here) or
-- did not (then it is not leased here, and the recorder, whose snapshot
-- cannot see it yet either, does not lease it: the claim does, as the
-- caller is told that not all it created was leased).

CREATE FUNCTION ontab_webhook_fan_out_leasing(
    p_limit int, p_lease uuid, p_lease_ms int, p_max int,
    OUT created bigint, OUT leased uuid[]
)
LANGUAGE plpgsql AS $$
DECLARE
    v_business uuid := ontab_tenant();
    v_endpoint record;
    v_through bigint;
    -- What was created, as the INSERTs returned it.
    v_ids uuid[] := '{}'::uuid[];
    v_endpoints uuid[] := '{}'::uuid[];
    v_subjects uuid[] := '{}'::uuid[];
    v_sequences bigint[] := '{}'::bigint[];
    v_part record;
BEGIN
    created := 0::bigint;
    leased := '{}'::uuid[];
    FOR v_endpoint IN
        SELECT e.id, e.types, e.disabled, e.fanned_out_through
          FROM webhook_endpoints e
         WHERE e.business_id = v_business
         ORDER BY e.id
           FOR UPDATE
    LOOP
        -- Only the run of sequences that follows the cursor without a gap.
        SELECT max(run.sequence) INTO v_through
          FROM (SELECT ev.sequence, row_number() OVER (ORDER BY ev.sequence) AS nth
                  FROM events ev
                 WHERE ev.business_id = v_business
                   AND ev.sequence > v_endpoint.fanned_out_through
                 ORDER BY ev.sequence
                 LIMIT p_limit) AS run
         WHERE run.sequence = v_endpoint.fanned_out_through + run.nth;
        CONTINUE WHEN v_through IS NULL;
        IF NOT v_endpoint.disabled THEN
            WITH added AS (
                INSERT INTO webhook_deliveries (business_id, id, endpoint_id, event_id, sequence, subject_id)
                SELECT ev.business_id, gen_random_uuid(), v_endpoint.id, ev.id, ev.sequence,
                       coalesce(ev.subject_id, ev.business_id)
                  FROM events ev
                 WHERE ev.business_id = v_business
                   AND ev.sequence > v_endpoint.fanned_out_through
                   AND ev.sequence <= v_through
                   AND (v_endpoint.types IS NULL OR ev.type = ANY (v_endpoint.types))
                RETURNING id, subject_id, sequence
            )
            SELECT coalesce(array_agg(added.id), '{}'::uuid[]) AS ids,
                   coalesce(array_agg(added.subject_id), '{}'::uuid[]) AS subjects,
                   coalesce(array_agg(added.sequence), '{}'::bigint[]) AS sequences
              INTO v_part
              FROM added;
            v_ids := v_ids || v_part.ids;
            v_subjects := v_subjects || v_part.subjects;
            v_sequences := v_sequences || v_part.sequences;
            v_endpoints := v_endpoints || array_fill(v_endpoint.id, ARRAY[cardinality(v_part.ids)]);
        END IF;
        UPDATE webhook_endpoints
           SET fanned_out_through = v_through
         WHERE business_id = v_business AND id = v_endpoint.id;
    END LOOP;
    created := cardinality(v_ids)::bigint;
    IF created = 0 OR p_lease IS NULL OR p_max <= 0 THEN
        RETURN;
    END IF;

    -- A new statement: it sees the deliveries just created. Each subject's
    -- first new delivery, from what the INSERTs returned, is leased when it
    -- is its subject's head: one probe of the pending index per subject
    -- (LATERAL ... LIMIT 1, as in ontab_webhook_attempted_batch), then the
    -- leasing by primary key.
    WITH firsts AS (
        SELECT DISTINCT ON (n.endpoint_id, n.subject_id) n.id, n.endpoint_id, n.subject_id, n.sequence
          FROM unnest(v_ids, v_endpoints, v_subjects, v_sequences) AS n (id, endpoint_id, subject_id, sequence)
         ORDER BY n.endpoint_id, n.subject_id, n.sequence
    ), heads AS (
        SELECT f.id
          FROM firsts f
         CROSS JOIN LATERAL (
               SELECT o.id
                 FROM webhook_deliveries o
                WHERE o.business_id = v_business AND o.endpoint_id = f.endpoint_id
                  AND o.subject_id = f.subject_id AND o.state = 'pending'
                ORDER BY o.sequence, o.id
                LIMIT 1) h
         WHERE h.id = f.id
         ORDER BY f.sequence
         LIMIT p_max
    ), taken AS (
        UPDATE webhook_deliveries d
           SET lease = p_lease, leased_until = now() + make_interval(secs => p_lease_ms / 1000.0)
         WHERE d.business_id = v_business AND d.id = ANY (ARRAY(SELECT h.id FROM heads h))
           AND d.lease IS NULL
        RETURNING d.id
    )
    SELECT coalesce(array_agg(taken.id), '{}'::uuid[]) INTO leased FROM taken;
END
$$;
REVOKE ALL ON FUNCTION ontab_webhook_fan_out_leasing(int, uuid, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_fan_out_leasing(int, uuid, int, int) TO ontab_app;

-- The fan-out alone is the leasing one leasing nothing.
CREATE OR REPLACE FUNCTION ontab_webhook_fan_out(p_limit int) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    RETURN (SELECT f.created FROM ontab_webhook_fan_out_leasing(p_limit, NULL, 0, 0) f);
END
$$;
