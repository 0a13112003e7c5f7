-- Event order across a shard move (Citus).
--
-- The sequencer numbers a business's committed events in the order of
-- their `position`, drawn from the sequence event_positions when each is
-- written. On one PostgreSQL that is one counter. On Citus every node draws
-- from its own range of it: node group g from (g << 48) + 1 on. A
-- business's events are written on the node that holds its shards, so
-- their positions rise, until a shard move puts the business on another
-- node. A move to a node of a lower group makes the new events' positions
-- lower than those written before the move; events written just before it
-- and still unnumbered would then be numbered after events written after
-- it, against commit order (and against per-subject order, which webhooks
-- keep).
--
-- A move is a barrier: Citus switches the shard's placement only when the
-- old node takes no more writes to it, so every event written on the old
-- node committed before any written on the new one. The sequencer now
-- remembers the position of the last event it numbered (last_position)
-- and numbers first the unnumbered events drawn in that position's range
-- (the node it numbered from last), then the others, each in position
-- order. That is commit order for one move between two numberings, and
-- the sequencer numbers every few milliseconds while any `ontab serve`
-- runs. Two moves of one business with no numbering between them (every
-- server stopped, or started with --event-sequence-interval 0, through
-- both moves) would still be ambiguous: docs/scale-out.md says to run
-- the sequencer through a move.
--
-- On one PostgreSQL every position is in group 0's range, the second
-- branch below finds nothing (an index probe past the range), and the
-- order is position order as before.

ALTER TABLE event_sequences ADD COLUMN last_position bigint;

CREATE OR REPLACE FUNCTION ontab_sequence_events(p_limit int)
RETURNS TABLE (event_type text, sequenced bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    tenant uuid := ontab_require_tenant();
    last bigint;
    here_from bigint;
    here_to bigint;
    types text[];
    counts bigint[];
BEGIN
    INSERT INTO event_sequences (business_id) VALUES (tenant) ON CONFLICT DO NOTHING;
    SELECT s.last_sequence, (coalesce(s.last_position, 0) >> 48) << 48
      INTO last, here_from
      FROM event_sequences s WHERE s.business_id = tenant
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    here_to := here_from + (1::bigint << 48);
    -- This statement's snapshot is taken after the lock was won: it sees
    -- every earlier sequencer's numbers, and exactly the events committed
    -- by now. Each branch walks events_unsequenced in position order.
    WITH candidates AS (
        (SELECT e.id, e.position, false AS moved
           FROM events e
          WHERE e.business_id = tenant AND e.sequence IS NULL
            AND e.position >= here_from AND e.position < here_to
          ORDER BY e.position
          LIMIT p_limit)
        UNION ALL
        (SELECT e.id, e.position, true AS moved
           FROM events e
          WHERE e.business_id = tenant AND e.sequence IS NULL
            AND (e.position < here_from OR e.position >= here_to)
          ORDER BY e.position
          LIMIT p_limit)
    ), batch AS (
        SELECT c.id, c.position,
               last + row_number() OVER (ORDER BY c.moved, c.position) AS sequence
          FROM candidates c
         ORDER BY c.moved, c.position
         LIMIT p_limit
    ), numbered AS (
        UPDATE events e SET sequence = b.sequence
          FROM batch b
         WHERE e.business_id = tenant AND e.id = b.id
        RETURNING e.type, e.sequence, e.position
    ), bumped AS (
        UPDATE event_sequences s
           SET last_sequence = n.sequence, last_position = n.position
          FROM (SELECT n.sequence, n.position FROM numbered n
                 ORDER BY n.sequence DESC LIMIT 1) n
         WHERE s.business_id = tenant
    )
    SELECT array_agg(t.type), array_agg(t.n) INTO types, counts
      FROM (SELECT n.type, count(*) AS n FROM numbered n GROUP BY n.type) t;
    IF types IS NOT NULL THEN
        PERFORM pg_notify('ontab_events', tenant::text);
        RETURN QUERY SELECT u.t, u.n FROM unnest(types, counts) AS u (t, n);
    END IF;
END
$$;
