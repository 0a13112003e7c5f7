-- A subject's next delivery, leased straight after the previous one was
-- delivered.
--
-- With 0006 alone each delivery waits for a delivery round: a global claim
-- that finds every (endpoint, subject)'s head among all pending deliveries.
-- A subject with many events (one customer buying on and on, a flash sale's
-- few buyers) then gets one delivery per round, and a backlog makes every
-- round slower. The worker that just delivered a subject's event now asks
-- for that subject's next one itself: one index probe on
-- webhook_deliveries_pending, under exactly the conditions of
-- ontab_claim_webhook_deliveries (the subject's lowest pending sequence,
-- due, not leased or its lease expired, the endpoint enabled), so order
-- per subject and one attempt at a time hold as before, across servers too:
-- a concurrent claim of the same row re-checks the lease after the row
-- lock and loses.
CREATE FUNCTION ontab_claim_next_webhook_delivery(
    p_lease uuid, p_lease_ms int, p_business uuid, p_endpoint uuid, p_subject uuid
) RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
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
    RETURNING d.id
$$;
GRANT CREATE ON SCHEMA public TO ontab_system;
ALTER FUNCTION ontab_claim_next_webhook_delivery(uuid, int, uuid, uuid, uuid) OWNER TO ontab_system;
REVOKE CREATE ON SCHEMA public FROM ontab_system;
REVOKE ALL ON FUNCTION ontab_claim_next_webhook_delivery(uuid, int, uuid, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_claim_next_webhook_delivery(uuid, int, uuid, uuid, uuid) TO ontab_app;
