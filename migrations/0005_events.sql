-- Events: every change a business would react to, written in the same
-- transaction as the change (a transactional outbox), then numbered per
-- business in commit order by a sequencer.
--
-- Guarantees established here:
-- * Written with the change. Triggers on the tables every write path goes
--   through (customers, products, stock_adjustments, credit_ledger, holds'
--   pending_holds, hold_endings) insert the event, so a change and its event
--   commit or roll back together, whichever path made it: a single
--   purchase, a group-committed batch (one statement per table, one event
--   statement per batch), a capture, the expiry sweep, the CLI. A refused
--   request writes nothing, so it has no event.
-- * Only API-visible changes are events. customer.updated / product.updated
--   fire when a column the PATCH can change actually changes (name, limit,
--   status, terms / name, price); the keepers of customers.held and
--   products.reserved (0002) and the stock moved by sales, returns and
--   adjustments change no such column (their own events tell of them).
-- * `data` is the resource as the API returns it: the JSON built here is the
--   JSON the HTTP views serialize (timestamps as chrono writes them:
--   RFC 3339, UTC `Z`, 0, 3 or 6 fractional digits), checked by a test per
--   event type against the API's answers.
-- * Sequence = commit order, gapless, without a hot row on the write path.
--   Writers insert events with sequence NULL and a `position` from a
--   PostgreSQL sequence (no row lock). The sequencer (ontab_sequence_events,
--   run by `ontab serve` in the background) numbers only rows it can see,
--   i.e. committed ones, under the business's event_sequences row lock,
--   which only sequencers take: per business, sequencing transactions run
--   one after another, each numbering committed unnumbered rows from
--   last_sequence + 1 on, in one commit. So a number is given once, never
--   reused, never skipped; a reader that sees sequence n sees every
--   sequence below n (the sequencing that gave them committed before the
--   one that gave n took the lock); and nothing can later appear below n.
-- * Only ontab_outbox (the triggers' owner) inserts events, only
--   ontab_sequencer numbers and prunes them; ontab_app reads its tenant's.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['ontab_outbox', 'ontab_sequencer'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
        IF NOT pg_has_role(current_user, r, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', r, current_user);
        END IF;
    END LOOP;
END
$$;

-- The order events were written in, across all businesses: nextval takes
-- no row lock and is never rolled back, so it costs a writer nothing
-- another writer waits for. Within one transaction and between transactions
-- serialized by a row lock (the same customer, the same product) it follows
-- the order of the writes, hence of their commits.
CREATE SEQUENCE event_positions AS bigint;

-- No foreign key to businesses: every writer would take a KEY SHARE lock on
-- its business's row, the per-business hot row this design avoids (many
-- concurrent lockers of one row each create a MultiXact). The business is
-- that of the row whose trigger writes the event, which references its
-- business itself, and businesses are never deleted.
CREATE TABLE events (
    business_id  uuid NOT NULL,
    -- The event's id: webhook-id and Nats-Msg-Id.
    id           uuid NOT NULL,
    -- NULL until sequenced after commit; then per business 1, 2, 3, ...
    -- with no gap, in commit order.
    sequence     bigint CHECK (sequence >= 1),
    type         text NOT NULL CHECK (type IN (
                     'customer.created', 'customer.updated', 'product.created', 'product.updated',
                     'stock.adjusted', 'purchase.created', 'payment.recorded', 'return.recorded',
                     'write_off.recorded', 'hold.created', 'hold.captured', 'hold.voided',
                     'hold.expired', 'customer.overdue')),
    subject_id   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    data         jsonb NOT NULL,
    position     bigint NOT NULL DEFAULT nextval('event_positions'),
    PRIMARY KEY (business_id, id)
);
-- One event per sequence number, and the feed's read: a range of it. Partial,
-- so unnumbered rows (NULL) are not all appended to one leaf page of it by
-- every concurrent writer of a business.
CREATE UNIQUE INDEX events_sequence ON events (business_id, sequence) WHERE sequence IS NOT NULL;
ALTER SEQUENCE event_positions OWNED BY events.position;
-- The sequencer's work list: small, as rows leave it once numbered.
CREATE INDEX events_unsequenced ON events (business_id, position) WHERE sequence IS NULL;

-- Per business, the last sequence given and how far the feed was pruned.
-- Only sequencers touch it (never a writer), so its row lock orders the
-- sequencing transactions of one business and nothing else.
CREATE TABLE event_sequences (
    business_id      uuid PRIMARY KEY REFERENCES businesses (id),
    last_sequence    bigint NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    -- Every sequence up to this one has been pruned (retention).
    pruned_through   bigint NOT NULL DEFAULT 0 CHECK (pruned_through BETWEEN 0 AND last_sequence)
);

-- How many events of each type pruning removed, so `ontab audit` can still
-- count one event per change after retention has done its work.
CREATE TABLE events_pruned (
    business_id  uuid NOT NULL REFERENCES businesses (id),
    type         text NOT NULL,
    pruned       bigint NOT NULL CHECK (pruned >= 0),
    PRIMARY KEY (business_id, type)
);

-- What existed before events began (this migration), per business and
-- type: changes made before have no event, and the audit counts from here.
CREATE TABLE events_baseline (
    business_id  uuid NOT NULL REFERENCES businesses (id),
    type         text NOT NULL,
    existing     bigint NOT NULL CHECK (existing >= 0),
    PRIMARY KEY (business_id, type)
);

-- The purchases customer.overdue has been emitted for: once per purchase,
-- whichever scanner (one per `ontab serve`) finds it first.
CREATE TABLE overdue_emitted (
    business_id  uuid NOT NULL,
    order_id     uuid NOT NULL,
    customer_id  uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, order_id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id)
);

-- A UUIDv7 (time-ordered, so the primary key's index is appended to at its
-- right edge): PostgreSQL 15 has no uuidv7(). The millisecond clock goes in
-- the first 48 bits, the version bits turn 4 into 7.
CREATE FUNCTION ontab_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                                          PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                                          FROM 1 FOR 6),
                                  52, 1), 53, 1), 'hex')::uuid
$$;

-- A timestamp as the API writes it (chrono's RFC 3339 with SecondsFormat::AutoSi
-- and `Z`): no fraction for whole seconds, else 3 digits when they suffice,
-- else 6 (PostgreSQL keeps microseconds).
-- One expression (no FROM, not STRICT: NULL gives NULL anyway), so the
-- planner inlines it into the triggers' statements.
CREATE FUNCTION ontab_json_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
           || CASE WHEN date_part('microseconds', t AT TIME ZONE 'UTC')::bigint % 1000000 = 0 THEN ''
                   WHEN date_part('microseconds', t AT TIME ZONE 'UTC')::bigint % 1000 = 0
                       THEN '.' || lpad((date_part('microseconds', t AT TIME ZONE 'UTC')::bigint % 1000000 / 1000)::text, 3, '0')
                   ELSE '.' || lpad((date_part('microseconds', t AT TIME ZONE 'UTC')::bigint % 1000000)::text, 6, '0') END
           || 'Z'
$$;

-- The resources as the API shows them (src/http/views.rs), one function
-- each, for the current snapshot.
CREATE FUNCTION ontab_customer_json(p_business uuid, p_customer uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', c.id, 'name', c.name, 'credit_limit', c.credit_limit, 'balance', v.balance,
        'held', v.held, 'available_credit', greatest(c.credit_limit::numeric - v.balance - v.held, 0)::bigint,
        'status', c.status, 'payment_terms_days', c.payment_terms_days,
        'created_at', ontab_json_time(c.created_at))
      FROM customers c
     CROSS JOIN LATERAL (
           SELECT c.held - ontab_expired_hold_credit(c.business_id, c.id) AS held,
                  coalesce((SELECT l.balance_after FROM credit_ledger l
                             WHERE l.business_id = c.business_id AND l.customer_id = c.id
                             ORDER BY l.seq DESC LIMIT 1), 0) AS balance) v
     WHERE c.business_id = p_business AND c.id = p_customer
$$;

CREATE FUNCTION ontab_product_json(p_business uuid, p_product uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', p.id, 'name', p.name, 'price', p.price, 'stock', p.stock, 'reserved', v.reserved,
        'available', greatest(p.stock - v.reserved, 0), 'created_at', ontab_json_time(p.created_at))
      FROM products p
     CROSS JOIN LATERAL (SELECT p.reserved - ontab_expired_reserve(p.business_id, p.id) AS reserved) v
     WHERE p.business_id = p_business AND p.id = p_product
$$;

-- An order as POST /v1/purchases (and a capture) answers it: no returns yet.
CREATE FUNCTION ontab_order_json(p_business uuid, p_order uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', o.id, 'customer_id', o.customer_id, 'total', o.total,
        'created_at', ontab_json_time(o.created_at), 'due_at', ontab_json_time(o.due_at),
        'hold_id', o.hold_id,
        'items', (SELECT jsonb_agg(jsonb_build_object('product_id', i.product_id, 'quantity', i.quantity,
                                                      'unit_price', i.unit_price, 'line_total', i.line_total)
                                   ORDER BY i.line_no)
                    FROM order_items i WHERE i.business_id = o.business_id AND i.order_id = o.id),
        'returns', '[]'::jsonb)
      FROM orders o
     WHERE o.business_id = p_business AND o.id = p_order
$$;

CREATE FUNCTION ontab_return_json(p_business uuid, p_return uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', r.id, 'order_id', r.order_id, 'amount', r.amount,
        'items', (SELECT jsonb_agg(jsonb_build_object('product_id', i.product_id, 'quantity', i.quantity,
                                                      'unit_price', i.unit_price, 'line_total', i.line_total)
                                   ORDER BY i.line_no)
                    FROM return_items i WHERE i.business_id = r.business_id AND i.return_id = r.id),
        'created_at', ontab_json_time(r.created_at))
      FROM returns r
     WHERE r.business_id = p_business AND r.id = p_return
$$;

CREATE FUNCTION ontab_entry_json(p_business uuid, p_entry uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', l.id, 'customer_id', l.customer_id, 'kind', l.kind, 'amount', l.amount,
        'balance_after', l.balance_after, 'order_id', l.order_id, 'return_id', l.return_id,
        'due_at', ontab_json_time(l.due_at), 'reason', l.reason, 'seq', l.seq,
        'created_at', ontab_json_time(l.created_at))
      FROM credit_ledger l
     WHERE l.business_id = p_business AND l.id = p_entry
$$;

-- A hold as GET /v1/holds/{id} shows it (ontab_hold_view, 0004), with the
-- API's timestamps.
CREATE FUNCTION ontab_hold_json(p_business uuid, p_hold uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT v || jsonb_build_object(
                    'created_at', ontab_json_time((v ->> 'created_at')::timestamptz),
                    'expires_at', ontab_json_time((v ->> 'expires_at')::timestamptz),
                    'ended_at', ontab_json_time((v ->> 'ended_at')::timestamptz))
      FROM ontab_hold_view(p_business, p_hold) v
$$;

-- The triggers. Each runs as ontab_outbox (SECURITY DEFINER), the only
-- role that may insert events; row level security binds it to the
-- transaction's tenant like every other writer.
CREATE FUNCTION ontab_customer_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(),
            CASE TG_OP WHEN 'INSERT' THEN 'customer.created' ELSE 'customer.updated' END,
            NEW.id, ontab_customer_json(NEW.business_id, NEW.id));
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_created_event AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION ontab_customer_events();
-- Not for held (the holds' keeper) nor the lock-only business_id "update".
CREATE TRIGGER customers_updated_event AFTER UPDATE ON customers
    FOR EACH ROW WHEN ((OLD.name, OLD.credit_limit, OLD.status, OLD.payment_terms_days)
                       IS DISTINCT FROM (NEW.name, NEW.credit_limit, NEW.status, NEW.payment_terms_days))
    EXECUTE FUNCTION ontab_customer_events();

CREATE FUNCTION ontab_product_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(),
            CASE TG_OP WHEN 'INSERT' THEN 'product.created' ELSE 'product.updated' END,
            NEW.id, ontab_product_json(NEW.business_id, NEW.id));
    RETURN NULL;
END
$$;

CREATE TRIGGER products_created_event AFTER INSERT ON products
    FOR EACH ROW EXECUTE FUNCTION ontab_product_events();
-- Not for stock (sales, returns, adjustments: events of their own) nor
-- reserved (the holds' keeper).
CREATE TRIGGER products_updated_event AFTER UPDATE ON products
    FOR EACH ROW WHEN ((OLD.name, OLD.price) IS DISTINCT FROM (NEW.name, NEW.price))
    EXECUTE FUNCTION ontab_product_events();

-- data: what POST .../stock-adjustments answers, the product after it and
-- the adjustment.
CREATE FUNCTION ontab_adjustment_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(), 'stock.adjusted', NEW.product_id,
            jsonb_build_object(
                'product', ontab_product_json(NEW.business_id, NEW.product_id),
                'adjustment', jsonb_build_object(
                    'id', NEW.id, 'product_id', NEW.product_id, 'delta', NEW.delta, 'reason', NEW.reason,
                    'stock_after', NEW.stock_after, 'created_at', ontab_json_time(NEW.created_at))));
    RETURN NULL;
END
$$;

CREATE TRIGGER stock_adjustments_event AFTER INSERT ON stock_adjustments
    FOR EACH ROW EXECUTE FUNCTION ontab_adjustment_events();

-- One statement per ledger INSERT, however many entries it appends (a
-- group-committed batch appends all its purchases at once): every writer
-- of the ledger appends last, after the order and its lines or the return
-- and its lines, so the data is complete. A purchase's event is its order,
-- a return's the return, a payment's and a write-off's the ledger entry,
-- each as its POST answers it.
CREATE FUNCTION ontab_ledger_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    SELECT n.business_id, ontab_uuid_v7(),
           CASE n.kind WHEN 'purchase' THEN 'purchase.created' WHEN 'payment' THEN 'payment.recorded'
                       WHEN 'return' THEN 'return.recorded' ELSE 'write_off.recorded' END,
           n.customer_id,
           CASE n.kind WHEN 'purchase' THEN ontab_order_json(n.business_id, n.order_id)
                       WHEN 'return' THEN ontab_return_json(n.business_id, n.return_id)
                       ELSE ontab_entry_json(n.business_id, n.id) END
      FROM new_entries n
     ORDER BY n.customer_id, n.seq;
    RETURN NULL;
END
$$;

CREATE TRIGGER credit_ledger_events AFTER INSERT ON credit_ledger
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ontab_ledger_events();

-- A hold is complete (its lines written) when its credit is reserved;
-- pending_holds rows are inserted by ontab_hold only.
CREATE FUNCTION ontab_hold_created_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    VALUES (NEW.business_id, ontab_uuid_v7(), 'hold.created', NEW.customer_id,
            ontab_hold_json(NEW.business_id, NEW.hold_id));
    RETURN NULL;
END
$$;

CREATE TRIGGER pending_holds_created_event AFTER INSERT ON pending_holds
    FOR EACH ROW EXECUTE FUNCTION ontab_hold_created_events();

CREATE FUNCTION ontab_hold_ended_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO events (business_id, id, type, subject_id, data)
    SELECT NEW.business_id, ontab_uuid_v7(), 'hold.' || NEW.outcome, h.customer_id,
           ontab_hold_json(NEW.business_id, NEW.hold_id)
      FROM holds h
     WHERE h.business_id = NEW.business_id AND h.id = NEW.hold_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER hold_endings_event AFTER INSERT ON hold_endings
    FOR EACH ROW EXECUTE FUNCTION ontab_hold_ended_events();

-- customer.overdue, for the current tenant: each purchase past its due_at
-- and not fully settled (FIFO, as the overdue report: credits settle the
-- oldest purchases first, so a purchase is unsettled exactly when its
-- purchases_to_date exceeds everything ever credited to the customer),
-- once. data: the customer as the API shows it, plus `overdue` naming the
-- purchase. A purchase settled by its due date never becomes overdue later:
-- credits only accumulate. Returns how many it emitted.
CREATE FUNCTION ontab_record_overdue(p_limit int) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    emitted bigint;
BEGIN
    WITH due AS (
        SELECT l.customer_id, l.order_id, l.due_at,
               least(l.amount, l.purchases_to_date - h.credited) AS unsettled
          FROM customers c
         CROSS JOIN LATERAL (
               SELECT x.purchases_to_date - x.balance_after AS credited
                 FROM credit_ledger x
                WHERE x.business_id = c.business_id AND x.customer_id = c.id
                ORDER BY x.seq DESC LIMIT 1) h
          JOIN credit_ledger l
            ON l.business_id = c.business_id AND l.customer_id = c.id
           AND l.kind = 'purchase' AND l.amount > 0 AND l.purchases_to_date > h.credited
         WHERE c.business_id = tenant AND l.due_at <= now()
           AND NOT EXISTS (SELECT 1 FROM overdue_emitted o
                            WHERE o.business_id = tenant AND o.order_id = l.order_id)
         ORDER BY l.due_at, l.order_id
         LIMIT p_limit
    ), marked AS (
        -- A concurrent scanner's row wins the primary key; this one then
        -- emits nothing for that purchase.
        INSERT INTO overdue_emitted (business_id, order_id, customer_id)
        SELECT tenant, d.order_id, d.customer_id FROM due d
        ON CONFLICT DO NOTHING
        RETURNING order_id
    ), written AS (
        INSERT INTO events (business_id, id, type, subject_id, data)
        SELECT tenant, ontab_uuid_v7(), 'customer.overdue', d.customer_id,
               ontab_customer_json(tenant, d.customer_id)
               || jsonb_build_object('overdue', jsonb_build_object(
                      'order_id', d.order_id, 'due_at', ontab_json_time(d.due_at),
                      'unsettled_amount', d.unsettled))
          FROM due d JOIN marked m ON m.order_id = d.order_id
         ORDER BY d.due_at, d.order_id
        RETURNING 1
    )
    SELECT count(*) INTO emitted FROM written;
    RETURN emitted;
END
$$;

-- Numbers the current tenant's committed, unnumbered events (at most
-- p_limit, in the order they were written) after the last sequence given,
-- and wakes the feed's readers and the deliverers (NOTIFY ontab_events,
-- payload the business id; delivered at commit). Another sequencer already
-- at it (its row lock held): returns nothing, that one will do it. Returns
-- the count per type.
CREATE FUNCTION ontab_sequence_events(p_limit int)
RETURNS TABLE (event_type text, sequenced bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    last bigint;
    types text[];
    counts bigint[];
BEGIN
    INSERT INTO event_sequences (business_id) VALUES (tenant) ON CONFLICT DO NOTHING;
    SELECT s.last_sequence INTO last FROM event_sequences s WHERE s.business_id = tenant
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- This statement's snapshot is taken after the lock was won: it sees
    -- every earlier sequencer's numbers, and exactly the events committed
    -- by now.
    WITH batch AS (
        SELECT e.id, last + row_number() OVER (ORDER BY e.position) AS sequence
          FROM events e
         WHERE e.business_id = tenant AND e.sequence IS NULL
         ORDER BY e.position
         LIMIT p_limit
    ), numbered AS (
        UPDATE events e SET sequence = b.sequence
          FROM batch b
         WHERE e.business_id = tenant AND e.id = b.id
        RETURNING e.type, e.sequence
    ), bumped AS (
        UPDATE event_sequences s
           SET last_sequence = (SELECT max(n.sequence) FROM numbered n)
         WHERE s.business_id = tenant AND EXISTS (SELECT 1 FROM numbered)
    )
    SELECT array_agg(t.type), array_agg(t.n) INTO types, counts
      FROM (SELECT n.type, count(*) AS n FROM numbered n GROUP BY n.type) t;
    IF types IS NOT NULL THEN
        PERFORM pg_notify('ontab_events', tenant::text);
        RETURN QUERY SELECT u.t, u.n FROM unnest(types, counts) AS u (t, n);
    END IF;
END
$$;

-- How far pruning may go for a business besides age: NULL, no further
-- limit. The delivery side (webhooks, NATS) may replace this function to
-- return the lowest sequence not yet delivered or published, so nothing is
-- pruned before it is out.
CREATE FUNCTION ontab_event_prune_limit(p_business uuid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT NULL::bigint
$$;

-- Retention for the current tenant: deletes the oldest events, in sequence
-- order, while they were written before p_before (and below
-- ontab_event_prune_limit), at most p_limit of them; so what remains is
-- always a gapless range ending at the newest. Counts what it removed per
-- type (events_pruned) for the audit.
CREATE FUNCTION ontab_prune_events(p_before timestamptz, p_limit int) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    ceiling bigint := ontab_event_prune_limit(tenant);
    through bigint;
    removed bigint;
BEGIN
    PERFORM 1 FROM event_sequences s WHERE s.business_id = tenant FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    WITH oldest AS (
        SELECT e.sequence, e.created_at
          FROM events e
         WHERE e.business_id = tenant AND e.sequence IS NOT NULL
         ORDER BY e.sequence
         LIMIT p_limit
    ), stop AS (
        SELECT min(o.sequence) AS sequence FROM oldest o
         WHERE o.created_at >= p_before OR o.sequence >= ceiling
    ), gone AS (
        DELETE FROM events e
         USING oldest o
         WHERE e.business_id = tenant AND e.sequence = o.sequence
           AND o.sequence < coalesce((SELECT s.sequence FROM stop s), 9223372036854775807)
        RETURNING e.type, e.sequence
    ), tally AS (
        INSERT INTO events_pruned AS p (business_id, type, pruned)
        SELECT tenant, g.type, count(*) FROM gone g GROUP BY g.type
        ON CONFLICT (business_id, type) DO UPDATE SET pruned = p.pruned + excluded.pruned
    )
    SELECT max(g.sequence), count(*) INTO through, removed FROM gone g;
    IF removed > 0 THEN
        UPDATE event_sequences SET pruned_through = through WHERE business_id = tenant;
    END IF;
    RETURN removed;
END
$$;

-- Across tenants, only through these: which businesses have unnumbered
-- events (and since when: the sequencer's lag), and every business id (the
-- overdue scan and retention then work in each tenant's own transaction).
CREATE FUNCTION ontab_unsequenced_businesses(p_limit int)
RETURNS TABLE (business_id uuid, oldest timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT e.business_id, min(e.created_at)
      FROM public.events e
     WHERE e.sequence IS NULL
     GROUP BY e.business_id
     ORDER BY min(e.created_at)
     LIMIT p_limit
$$;

CREATE FUNCTION ontab_event_business_ids()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT b.id FROM public.businesses b ORDER BY b.id
$$;

-- Changes made before this migration have no event: the audit counts from
-- what existed then. Every table hides its rows from all but the tenant of
-- the transaction (the migrating role included, unless a superuser), so
-- each business is counted under its own tenant.
DO $$
DECLARE
    b uuid;
BEGIN
    FOR b IN SELECT ontab_business_ids() LOOP
        PERFORM set_config('ontab.business_id', b::text, true);
        INSERT INTO events_baseline (business_id, type, existing)
        SELECT b, t.type, t.existing
          FROM (VALUES
                ('customer.created', (SELECT count(*) FROM customers WHERE business_id = b)),
                ('product.created', (SELECT count(*) FROM products WHERE business_id = b)),
                ('stock.adjusted', (SELECT count(*) FROM stock_adjustments WHERE business_id = b)),
                ('purchase.created', (SELECT count(*) FROM credit_ledger WHERE business_id = b AND kind = 'purchase')),
                ('payment.recorded', (SELECT count(*) FROM credit_ledger WHERE business_id = b AND kind = 'payment')),
                ('return.recorded', (SELECT count(*) FROM credit_ledger WHERE business_id = b AND kind = 'return')),
                ('write_off.recorded', (SELECT count(*) FROM credit_ledger WHERE business_id = b AND kind = 'write_off')),
                ('hold.created', (SELECT count(*) FROM holds WHERE business_id = b)),
                ('hold.captured', (SELECT count(*) FROM hold_endings WHERE business_id = b AND outcome = 'captured')),
                ('hold.voided', (SELECT count(*) FROM hold_endings WHERE business_id = b AND outcome = 'voided')),
                ('hold.expired', (SELECT count(*) FROM hold_endings WHERE business_id = b AND outcome = 'expired'))
               ) AS t (type, existing)
         WHERE t.existing > 0;
    END LOOP;
    PERFORM set_config('ontab.business_id', '', true);
END
$$;

-- Row level security as on every tenant table (0003).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'event_sequences', 'events_pruned', 'events_baseline', 'overdue_emitted']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                        USING (business_id = ontab_tenant())
                        WITH CHECK (business_id = ontab_tenant())', t);
    END LOOP;
END
$$;

-- The feed and the audit read; nobody but the outbox writes events, nobody
-- but the sequencer numbers or prunes them.
GRANT SELECT ON events, event_sequences, events_pruned, events_baseline, overdue_emitted TO ontab_app;

GRANT USAGE ON SCHEMA public TO ontab_outbox, ontab_sequencer;
GRANT SELECT ON customers, products, orders, order_items, returns, return_items, credit_ledger,
    holds, hold_items, hold_endings, pending_holds, pending_hold_items, overdue_emitted TO ontab_outbox;
GRANT INSERT (business_id, id, type, subject_id, data) ON events TO ontab_outbox;
GRANT INSERT ON overdue_emitted TO ontab_outbox;
GRANT USAGE ON SEQUENCE event_positions TO ontab_outbox;

GRANT SELECT, DELETE ON events TO ontab_sequencer;
GRANT UPDATE (sequence) ON events TO ontab_sequencer;
GRANT SELECT, INSERT, UPDATE ON event_sequences TO ontab_sequencer;
GRANT SELECT, INSERT, UPDATE ON events_pruned TO ontab_sequencer;

-- The outbox writes the event of every row written, whoever writes it: a
-- role bound by row level security can only write its tenant's rows, so the
-- triggers (which read and write exactly the business of the row that fired
-- them) see that business; a session that bypasses row level security (the
-- operator as superuser, with no tenant set) gets its events too.
-- ontab_outbox is reached only through its SECURITY DEFINER functions, each
-- scoped by the firing row's business (or the transaction's tenant).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'products', 'orders', 'order_items', 'returns', 'return_items',
                             'credit_ledger', 'holds', 'hold_items', 'hold_endings', 'pending_holds',
                             'pending_hold_items']
    LOOP
        EXECUTE format('CREATE POLICY outbox_reads ON %I FOR SELECT TO ontab_outbox USING (true)', t);
    END LOOP;
END
$$;
CREATE POLICY outbox_writes ON events FOR INSERT TO ontab_outbox WITH CHECK (true);

-- Cross-tenant discovery runs as ontab_system, which sees only unnumbered
-- events (their business and age) and the business list (0003).
GRANT SELECT (business_id, sequence, created_at) ON events TO ontab_system;
CREATE POLICY sequencer_work ON events FOR SELECT TO ontab_system USING (sequence IS NULL);

GRANT EXECUTE ON FUNCTION ontab_tenant() TO ontab_outbox, ontab_sequencer;
GRANT EXECUTE ON FUNCTION ontab_require_tenant() TO ontab_outbox, ontab_sequencer;
GRANT EXECUTE ON FUNCTION ontab_expired_hold_credit(uuid, uuid), ontab_expired_reserve(uuid, uuid),
    ontab_hold_view(uuid, uuid) TO ontab_outbox;

GRANT CREATE ON SCHEMA public TO ontab_outbox, ontab_sequencer, ontab_system;
ALTER FUNCTION ontab_customer_events() OWNER TO ontab_outbox;
ALTER FUNCTION ontab_product_events() OWNER TO ontab_outbox;
ALTER FUNCTION ontab_adjustment_events() OWNER TO ontab_outbox;
ALTER FUNCTION ontab_ledger_events() OWNER TO ontab_outbox;
ALTER FUNCTION ontab_hold_created_events() OWNER TO ontab_outbox;
ALTER FUNCTION ontab_hold_ended_events() OWNER TO ontab_outbox;
ALTER FUNCTION ontab_record_overdue(int) OWNER TO ontab_outbox;
ALTER FUNCTION ontab_sequence_events(int) OWNER TO ontab_sequencer;
ALTER FUNCTION ontab_prune_events(timestamptz, int) OWNER TO ontab_sequencer;
ALTER FUNCTION ontab_unsequenced_businesses(int) OWNER TO ontab_system;
ALTER FUNCTION ontab_event_business_ids() OWNER TO ontab_system;
REVOKE CREATE ON SCHEMA public FROM ontab_outbox, ontab_sequencer, ontab_system;

REVOKE ALL ON FUNCTION ontab_customer_events(), ontab_product_events(), ontab_adjustment_events(),
    ontab_ledger_events(), ontab_hold_created_events(), ontab_hold_ended_events(),
    ontab_record_overdue(int), ontab_sequence_events(int), ontab_prune_events(timestamptz, int),
    ontab_unsequenced_businesses(int), ontab_event_business_ids()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ontab_record_overdue(int), ontab_sequence_events(int),
    ontab_prune_events(timestamptz, int), ontab_unsequenced_businesses(int), ontab_event_business_ids()
    TO ontab_app;
GRANT EXECUTE ON FUNCTION ontab_json_time(timestamptz), ontab_uuid_v7(),
    ontab_customer_json(uuid, uuid), ontab_product_json(uuid, uuid), ontab_order_json(uuid, uuid),
    ontab_return_json(uuid, uuid), ontab_entry_json(uuid, uuid), ontab_hold_json(uuid, uuid)
    TO ontab_outbox;
GRANT EXECUTE ON FUNCTION ontab_event_prune_limit(uuid) TO ontab_sequencer;
