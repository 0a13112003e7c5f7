-- Retention never outruns webhook delivery.
--
-- 0005's retention deletes a business's oldest events; 0006's deliveries
-- refer to their event with ON DELETE CASCADE. With the default retention
-- (30 days) against a retry schedule of about 32 hours that never met, but
-- a short `--event-retention` (or an endpoint that fans out slowly) could
-- prune an event whose delivery was still pending, silently dropping it, or
-- one an endpoint had not yet been given at all, after which that
-- endpoint's fan-out (which advances only over a gapless run after its
-- cursor) would never move again.
--
-- 0005 left the hook for this: ontab_event_prune_limit(business) answers
-- the lowest sequence that must be kept. It is now the lowest of
-- * every endpoint's next sequence to fan out (fanned_out_through + 1),
--   disabled endpoints included: their cursor keeps moving while disabled;
-- * the lowest sequence with a pending delivery to an enabled endpoint.
-- A disabled endpoint's pending deliveries do not hold retention back: an
-- endpoint left disabled longer than the retention loses them with their
-- events (replay could not bring those events back either).
--
-- NATS is not counted: a publisher configured once and then removed would
-- hold every event forever. An operator running NATS keeps the retention
-- longer than any outage it must survive (README, "Events out").
CREATE OR REPLACE FUNCTION ontab_event_prune_limit(p_business uuid) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT least(
        (SELECT min(e.fanned_out_through) + 1
           FROM webhook_endpoints e
          WHERE e.business_id = p_business),
        (SELECT min(d.sequence)
           FROM webhook_deliveries d
           JOIN webhook_endpoints e ON e.business_id = d.business_id AND e.id = d.endpoint_id
          WHERE d.business_id = p_business AND d.state = 'pending' AND NOT e.disabled)
    )
$$;

-- Owned by ontab_system, which may read endpoints' cursors and pending
-- deliveries and nothing else of them (0006); the retention's definer
-- (ontab_sequencer) only calls it.
GRANT CREATE ON SCHEMA public TO ontab_system;
ALTER FUNCTION ontab_event_prune_limit(uuid) OWNER TO ontab_system;
REVOKE CREATE ON SCHEMA public FROM ontab_system;
REVOKE ALL ON FUNCTION ontab_event_prune_limit(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_event_prune_limit(uuid) TO ontab_sequencer;
