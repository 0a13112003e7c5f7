-- Webhooks and NATS: the events of 0005, delivered.
--
-- What this schema guarantees:
-- * Every delivery, attempt, secret and endpoint belongs to one business
--   (business_id on every table, row level security as in 0003), and a
--   delivery refers to an event of its own business and an endpoint of its
--   own business (composite foreign keys): no endpoint can ever be sent
--   another tenant's event.
-- * An endpoint's `fanned_out_through` is the sequence up to which every
--   event was given a delivery (or skipped by its type filter, or while it
--   was disabled). It moves only forward over a gapless run of sequences
--   (ontab_webhook_fan_out), so no event is ever skipped by a sequence that
--   became visible late.
-- * A delivery is `pending` until a 2xx (`delivered`) or until its retries
--   run out (`failed`); per (endpoint, subject) only the pending delivery
--   with the lowest sequence may be attempted (ontab_claim_webhook_deliveries),
--   and only by the holder of an unexpired lease, so several servers on one
--   database never send the same delivery at once nor break a subject's
--   order. A server killed mid-attempt leaves a lease that expires; the
--   delivery is then sent again, with the same webhook-id.
-- * Secrets are stored as they must be used (HMAC keys cannot be hashed);
--   only ontab_app reads them, and only its tenant's.
-- * NATS: `nats_cursors.published_through` per business is the sequence up
--   to which every event has been acknowledged by JetStream.

CREATE TABLE webhook_endpoints (
    business_id uuid NOT NULL REFERENCES businesses (id),
    id uuid NOT NULL,
    url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    -- NULL: every type.
    types text[] NULL CHECK (cardinality(types) BETWEEN 1 AND 64),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    disabled boolean NOT NULL DEFAULT false,
    -- Why it was disabled: `requested` (PATCH) or `gone` (answered 410).
    disabled_reason text NULL CHECK (disabled_reason IN ('requested', 'gone')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    fanned_out_through bigint NOT NULL CHECK (fanned_out_through >= 0),
    PRIMARY KEY (business_id, id),
    CHECK (disabled = (disabled_reason IS NOT NULL))
);
CREATE INDEX webhook_endpoints_listing ON webhook_endpoints (business_id, created_at, id);

CREATE TABLE webhook_secrets (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    -- The decoded key: at least 24 random bytes.
    secret bytea NOT NULL CHECK (length(secret) BETWEEN 24 AND 64),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- NULL for the current secret; a rotated one signs until then.
    expires_at timestamptz NULL,
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, endpoint_id) REFERENCES webhook_endpoints ON DELETE CASCADE
);
CREATE INDEX webhook_secrets_of_endpoint ON webhook_secrets (business_id, endpoint_id);

CREATE TABLE webhook_deliveries (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    event_id uuid NOT NULL,
    sequence bigint NOT NULL,
    subject_id uuid NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Who may attempt it, until when; NULL when nobody does.
    lease uuid NULL,
    leased_until timestamptz NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz NULL,
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, endpoint_id) REFERENCES webhook_endpoints ON DELETE CASCADE,
    -- Pruning an event (0005's retention, far beyond the retry schedule)
    -- takes its deliveries with it.
    FOREIGN KEY (business_id, event_id) REFERENCES events (business_id, id) ON DELETE CASCADE,
    CHECK ((state = 'pending') = (finished_at IS NULL)),
    CHECK ((lease IS NULL) = (leased_until IS NULL))
);
-- The claim's walk: each (endpoint, subject)'s lowest pending sequence.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (business_id, endpoint_id, subject_id, sequence, id)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_of_event ON webhook_deliveries (business_id, event_id);

CREATE TABLE webhook_attempts (
    business_id uuid NOT NULL,
    id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    delivery_id uuid NOT NULL,
    event_id uuid NOT NULL,
    attempt int NOT NULL CHECK (attempt >= 1),
    -- NULL when no HTTP answer came (refused, timed out, blocked address).
    status_code int NULL CHECK (status_code BETWEEN 100 AND 999),
    error text NULL CHECK (length(error) <= 1000),
    duration_ms int NOT NULL CHECK (duration_ms >= 0),
    -- delivered, retrying (next_attempt_at says when), gave_up, disabled (410).
    outcome text NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'gave_up', 'disabled')),
    next_attempt_at timestamptz NULL,
    attempted_at timestamptz NOT NULL,
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, delivery_id) REFERENCES webhook_deliveries ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_listing ON webhook_attempts (business_id, endpoint_id, attempted_at DESC, id DESC);

CREATE TABLE nats_cursors (
    business_id uuid PRIMARY KEY REFERENCES businesses (id),
    published_through bigint NOT NULL DEFAULT 0 CHECK (published_through >= 0)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_endpoints', 'webhook_secrets', 'webhook_deliveries',
                             'webhook_attempts', 'nats_cursors']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                        USING (business_id = ontab_tenant())
                        WITH CHECK (business_id = ontab_tenant())', t);
    END LOOP;
END
$$;

-- ontab_app: the routes (create, change, delete endpoints; rotate secrets;
-- replay) and the delivery workers' tenant transactions (fan out, read what
-- to send, record the attempt). Deliveries' identity never changes: only
-- their progress columns may be written.
GRANT SELECT, INSERT, DELETE ON webhook_endpoints TO ontab_app;
GRANT UPDATE (url, types, description, disabled, disabled_reason, updated_at, fanned_out_through)
    ON webhook_endpoints TO ontab_app;
GRANT SELECT, INSERT ON webhook_secrets TO ontab_app;
GRANT UPDATE (expires_at) ON webhook_secrets TO ontab_app;
GRANT SELECT, INSERT ON webhook_deliveries TO ontab_app;
GRANT UPDATE (state, attempts, next_attempt_at, lease, leased_until, finished_at)
    ON webhook_deliveries TO ontab_app;
GRANT SELECT, INSERT ON webhook_attempts TO ontab_app;
GRANT SELECT, INSERT ON nats_cursors TO ontab_app;
GRANT UPDATE (published_through) ON nats_cursors TO ontab_app;
GRANT SELECT ON events TO ontab_app;

-- Gives every enabled endpoint of the current tenant a delivery of each
-- sequenced event after its `fanned_out_through` that its filter takes, up
-- to `p_limit` events per endpoint, and moves the cursor; a disabled
-- endpoint's cursor moves without deliveries (replay brings them back).
-- Answers the deliveries created. Runs as the caller (ontab_app, RLS-bound).
--
-- Endpoints are locked FOR UPDATE in id order, so two servers fanning out
-- the same business take turns; the events are read by later statements,
-- with a snapshot taken after the lock was granted, so the second sees what
-- the first moved and the events committed meanwhile.
CREATE FUNCTION ontab_webhook_fan_out(p_limit int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_endpoint record;
    v_through bigint;
    v_count bigint;
    v_added bigint := 0::bigint;
BEGIN
    FOR v_endpoint IN
        SELECT e.business_id, e.id, e.types, e.disabled, e.fanned_out_through
          FROM webhook_endpoints e
         WHERE e.business_id = ontab_tenant()
         ORDER BY e.id
           FOR UPDATE
    LOOP
        -- Only the run of sequences that follows the cursor without a gap.
        SELECT max(run.sequence) INTO v_through
          FROM (SELECT ev.sequence, row_number() OVER (ORDER BY ev.sequence) AS nth
                  FROM events ev
                 WHERE ev.business_id = v_endpoint.business_id
                   AND ev.sequence > v_endpoint.fanned_out_through
                 ORDER BY ev.sequence
                 LIMIT p_limit) AS run
         WHERE run.sequence = v_endpoint.fanned_out_through + run.nth;
        CONTINUE WHEN v_through IS NULL;
        IF NOT v_endpoint.disabled THEN
            INSERT INTO webhook_deliveries (business_id, id, endpoint_id, event_id, sequence, subject_id)
            SELECT ev.business_id, gen_random_uuid(), v_endpoint.id, ev.id, ev.sequence,
                   coalesce(ev.subject_id, ev.business_id)
              FROM events ev
             WHERE ev.business_id = v_endpoint.business_id
               AND ev.sequence > v_endpoint.fanned_out_through
               AND ev.sequence <= v_through
               AND (v_endpoint.types IS NULL OR ev.type = ANY (v_endpoint.types));
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_added := v_added + v_count;
        END IF;
        UPDATE webhook_endpoints
           SET fanned_out_through = v_through
         WHERE business_id = v_endpoint.business_id AND id = v_endpoint.id;
    END LOOP;
    RETURN v_added;
END
$$;
REVOKE ALL ON FUNCTION ontab_webhook_fan_out(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_fan_out(int) TO ontab_app;

-- Records an attempt of a delivery the caller holds the lease of: 2xx
-- delivers it; 410 disables the endpoint (the delivery waits, pending, for
-- it to be enabled again); anything else schedules the next attempt after
-- `p_schedule[attempts]` milliseconds, or gives up when the schedule has
-- run out. Answers the attempt's outcome, or NULL when the lease was lost
-- (expired and taken by another server, or the endpoint was deleted):
-- then nothing is recorded, and whoever holds it now decides.
CREATE FUNCTION ontab_webhook_attempted(
    p_delivery uuid, p_lease uuid, p_status int, p_error text, p_duration_ms int,
    p_attempted_at timestamptz, p_schedule bigint[]
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_delivery webhook_deliveries%ROWTYPE;
    v_outcome text;
    v_next timestamptz;
BEGIN
    SELECT * INTO v_delivery
      FROM webhook_deliveries d
     WHERE d.business_id = ontab_tenant() AND d.id = p_delivery
       AND d.state = 'pending' AND d.lease = p_lease
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF p_status BETWEEN 200 AND 299 THEN
        v_outcome := 'delivered';
    ELSIF p_status = 410 THEN
        v_outcome := 'disabled';
        v_next := now();
    ELSIF v_delivery.attempts + 1 <= coalesce(cardinality(p_schedule), 0) THEN
        v_outcome := 'retrying';
        v_next := now() + make_interval(secs => p_schedule[v_delivery.attempts + 1] / 1000.0);
    ELSE
        v_outcome := 'gave_up';
    END IF;
    UPDATE webhook_deliveries
       SET attempts = attempts + 1,
           state = CASE v_outcome WHEN 'delivered' THEN 'delivered'
                                  WHEN 'gave_up' THEN 'failed'
                                  ELSE 'pending' END,
           next_attempt_at = coalesce(v_next, next_attempt_at),
           finished_at = CASE WHEN v_outcome IN ('delivered', 'gave_up') THEN now() END,
           lease = NULL,
           leased_until = NULL
     WHERE business_id = v_delivery.business_id AND id = v_delivery.id;
    INSERT INTO webhook_attempts (business_id, id, endpoint_id, delivery_id, event_id, attempt,
                                  status_code, error, duration_ms, outcome, next_attempt_at, attempted_at)
    VALUES (v_delivery.business_id, gen_random_uuid(), v_delivery.endpoint_id, v_delivery.id,
            v_delivery.event_id, v_delivery.attempts + 1, p_status, left(p_error, 1000),
            greatest(p_duration_ms, 0), v_outcome, v_next, p_attempted_at);
    IF v_outcome = 'disabled' THEN
        UPDATE webhook_endpoints
           SET disabled = true, disabled_reason = 'gone', updated_at = now()
         WHERE business_id = v_delivery.business_id AND id = v_delivery.endpoint_id
           AND NOT disabled;
    END IF;
    RETURN v_outcome;
END
$$;
REVOKE ALL ON FUNCTION ontab_webhook_attempted(uuid, uuid, int, text, int, timestamptz, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_attempted(uuid, uuid, int, text, int, timestamptz, bigint[]) TO ontab_app;

-- Cross-tenant work of the delivery workers runs in SECURITY DEFINER
-- functions owned by ontab_system, which sees exactly what that work needs:
-- pending deliveries (to claim them), endpoints' cursors and whether they
-- are disabled, and which sequences exist (to find businesses with events
-- not yet fanned out or published). Everything else (bodies, URLs,
-- secrets) is read in the business's own tenant transaction.
GRANT CREATE ON SCHEMA public TO ontab_system;

GRANT SELECT (business_id, id, endpoint_id, subject_id, sequence, state, next_attempt_at, lease, leased_until),
      UPDATE (lease, leased_until)
    ON webhook_deliveries TO ontab_system;
CREATE POLICY delivery_claim ON webhook_deliveries FOR SELECT TO ontab_system USING (state = 'pending');
CREATE POLICY delivery_lease ON webhook_deliveries FOR UPDATE TO ontab_system
    USING (state = 'pending') WITH CHECK (state = 'pending');
GRANT SELECT (business_id, id, disabled, fanned_out_through) ON webhook_endpoints TO ontab_system;
CREATE POLICY delivery_workers ON webhook_endpoints FOR SELECT TO ontab_system USING (true);
GRANT SELECT (business_id, sequence) ON events TO ontab_system;
CREATE POLICY delivery_workers ON events FOR SELECT TO ontab_system USING (sequence IS NOT NULL);
GRANT SELECT ON nats_cursors TO ontab_system;
CREATE POLICY delivery_workers ON nats_cursors FOR SELECT TO ontab_system USING (true);

-- Leases up to `p_limit` deliveries that may be attempted now to `p_lease`
-- for `p_lease_ms`: each the lowest pending sequence of its (endpoint,
-- subject), due, not leased (or its lease expired), of an enabled
-- endpoint; earliest due first. Two servers claiming at once cannot both
-- lease one delivery: the UPDATE re-checks the lease on the row it locked
-- (READ COMMITTED re-reads a row updated meanwhile), so the second finds it
-- leased and skips it.
CREATE FUNCTION ontab_claim_webhook_deliveries(p_lease uuid, p_lease_ms int, p_limit int)
RETURNS TABLE (business_id uuid, delivery_id uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH heads AS (
        SELECT DISTINCT ON (d.business_id, d.endpoint_id, d.subject_id)
               d.business_id, d.id, d.endpoint_id, d.next_attempt_at, d.leased_until
          FROM public.webhook_deliveries d
         WHERE d.state = 'pending'
         ORDER BY d.business_id, d.endpoint_id, d.subject_id, d.sequence, d.id
    ), due AS (
        SELECT h.business_id, h.id
          FROM heads h
          JOIN public.webhook_endpoints e ON e.business_id = h.business_id AND e.id = h.endpoint_id
         WHERE NOT e.disabled
           AND h.next_attempt_at <= now()
           AND (h.leased_until IS NULL OR h.leased_until <= now())
         ORDER BY h.next_attempt_at
         LIMIT p_limit
    )
    UPDATE public.webhook_deliveries d
       SET lease = p_lease, leased_until = now() + make_interval(secs => p_lease_ms / 1000.0)
      FROM due
     WHERE d.business_id = due.business_id AND d.id = due.id
       AND d.state = 'pending'
       AND (d.leased_until IS NULL OR d.leased_until <= now())
    RETURNING d.business_id, d.id
$$;
ALTER FUNCTION ontab_claim_webhook_deliveries(uuid, int, int) OWNER TO ontab_system;
REVOKE ALL ON FUNCTION ontab_claim_webhook_deliveries(uuid, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_claim_webhook_deliveries(uuid, int, int) TO ontab_app;

-- Businesses with a sequenced event that some endpoint of theirs has not
-- fanned out yet (a missed notification, a restart): up to `p_limit`.
CREATE FUNCTION ontab_webhook_fan_out_due(p_limit int)
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT DISTINCT e.business_id
      FROM public.webhook_endpoints e
     WHERE EXISTS (SELECT 1 FROM public.events ev
                    WHERE ev.business_id = e.business_id
                      AND ev.sequence = e.fanned_out_through + 1)
     LIMIT p_limit
$$;
ALTER FUNCTION ontab_webhook_fan_out_due(int) OWNER TO ontab_system;
REVOKE ALL ON FUNCTION ontab_webhook_fan_out_due(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_fan_out_due(int) TO ontab_app;

-- Pending deliveries per endpoint, across tenants, for the backlog gauge.
CREATE FUNCTION ontab_webhook_backlog()
RETURNS TABLE (endpoint_id uuid, pending bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT d.endpoint_id, count(*) FROM public.webhook_deliveries d
     WHERE d.state = 'pending' GROUP BY d.endpoint_id
$$;
ALTER FUNCTION ontab_webhook_backlog() OWNER TO ontab_system;
REVOKE ALL ON FUNCTION ontab_webhook_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_webhook_backlog() TO ontab_app;

-- Businesses whose next sequence after their NATS cursor exists: up to
-- `p_limit`. (ontab_system lists businesses already, 0003.)
CREATE FUNCTION ontab_nats_due(p_limit int)
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT b.id
      FROM public.businesses b
     WHERE EXISTS (SELECT 1 FROM public.events ev
                    WHERE ev.business_id = b.id
                      AND ev.sequence = coalesce((SELECT c.published_through
                                                    FROM public.nats_cursors c
                                                   WHERE c.business_id = b.id), 0) + 1)
     LIMIT p_limit
$$;
ALTER FUNCTION ontab_nats_due(int) OWNER TO ontab_system;
REVOKE ALL ON FUNCTION ontab_nats_due(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_nats_due(int) TO ontab_app;

REVOKE CREATE ON SCHEMA public FROM ontab_system;
