-- Delivery rounds by index probes, not by scanning every event.
--
-- Measured (bench/run.sh uncontended-webhook, pg_stat_statements): 0006's
-- ontab_webhook_fan_out_due ran as a hash join over a sequential scan of
-- the whole events table, 8.5 ms per delivery round on 43,000 events and
-- growing with history: `ev.sequence = e.fanned_out_through + 1` cannot be
-- an index condition below row level security, because `+` on bigint is
-- not leakproof. The lowest sequence after the cursor (a leakproof `>`)
-- is an index-only probe of events_sequence per endpoint; it is the next
-- one exactly when it is the cursor + 1. Same answer, 0.2 ms.
--
-- And 0008's ontab_claim_next_webhook_delivery, a non-inlinable SQL
-- function, was planned again at every call (1.1 ms per call against
-- 0.16 ms for its statement); as PL/pgSQL its plan is kept per session.
CREATE OR REPLACE FUNCTION ontab_webhook_fan_out_due(p_limit int)
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT DISTINCT e.business_id
      FROM public.webhook_endpoints e
     CROSS JOIN LATERAL (SELECT ev.sequence
                           FROM public.events ev
                          WHERE ev.business_id = e.business_id
                            AND ev.sequence > e.fanned_out_through
                          ORDER BY ev.sequence
                          LIMIT 1) AS next_event
     WHERE next_event.sequence = e.fanned_out_through + 1
     LIMIT p_limit
$$;

CREATE OR REPLACE FUNCTION ontab_claim_next_webhook_delivery(
    p_lease uuid, p_lease_ms int, p_business uuid, p_endpoint uuid, p_subject uuid
) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    claimed uuid;
BEGIN
    WITH head AS (
        SELECT d.business_id, d.id, d.next_attempt_at, d.leased_until
          FROM public.webhook_deliveries d
         WHERE d.business_id = p_business AND d.endpoint_id = p_endpoint
           AND d.subject_id = p_subject AND d.state = 'pending'
         ORDER BY d.sequence, d.id
         LIMIT 1
    ), due AS (
        SELECT h.business_id, h.id
          FROM head h
          JOIN public.webhook_endpoints e ON e.business_id = h.business_id AND e.id = p_endpoint
         WHERE NOT e.disabled
           AND h.next_attempt_at <= now()
           AND (h.leased_until IS NULL OR h.leased_until <= now())
    )
    UPDATE public.webhook_deliveries d
       SET lease = p_lease, leased_until = now() + make_interval(secs => p_lease_ms / 1000.0)
      FROM due
     WHERE d.business_id = due.business_id AND d.id = due.id
       AND d.state = 'pending'
       AND (d.leased_until IS NULL OR d.leased_until <= now())
    RETURNING d.id INTO claimed;
    RETURN claimed;
END
$$;
