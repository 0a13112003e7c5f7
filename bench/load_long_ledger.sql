-- One customer with a very long ledger, for the statement benchmark
-- (bench/statement.sh): `pairs` purchases of 1,000 each paid in full by the
-- next entry, `spacing` apart, the newest about 5 days old.
--
--   psql "$DATABASE_URL" -v business=<uuid> [-v pairs=500000] [-v spacing='5 minutes'] \
--        -f bench/load_long_ledger.sql
--
-- Unlike bench/load_history.sql the rows are written with triggers off
-- (session_replication_role = replica, so run it as a superuser): the chain
-- trigger's per-row cost grows with a single chain this long (measured on
-- the shared 2-core machine: 0.9 ms a row at 10,000 entries, 3 to 9 ms at
-- 20,000 to 40,000), so 1,000,000 entries through it take hours. What the
-- triggers would have filled in (purchases_to_date, due_at) is written
-- here, and bench/statement.sh runs `ontab audit` over the result, which
-- re-checks every invariant the triggers hold (chain, limit, account rules,
-- order totals, stock) from the stored data.

\set ON_ERROR_STOP on
\if :{?pairs}
\else
    \set pairs 500000
\endif
\if :{?spacing}
\else
    \set spacing '5 minutes'
\endif

BEGIN;
SELECT set_config('ontab.business_id', :'business', true);
SET LOCAL session_replication_role = replica;

CREATE TEMP TABLE long_times ON COMMIT DROP AS
SELECT now() - 2 * :pairs * interval :'spacing' - interval '5 days' AS start;

INSERT INTO products (business_id, id, name, price, stock, initial_stock, created_at)
SELECT :'business'::uuid, md5(:'business' || ':long:product')::uuid, 'Long product',
       1000, 1000000000 - :pairs, 1000000000, start - interval '40 days'
  FROM long_times;

-- Its limit, status and terms, as the creation trigger records them.
INSERT INTO customers (business_id, id, name, credit_limit, status, payment_terms_days, created_at)
SELECT :'business'::uuid, md5(:'business' || ':long:customer')::uuid, 'Long ledger',
       1000000, 'active', 30, start - interval '40 days'
  FROM long_times;
INSERT INTO customer_changes (business_id, customer_id, credit_limit, status, payment_terms_days,
                              after_seq, changed_by, changed_at)
SELECT :'business'::uuid, md5(:'business' || ':long:customer')::uuid, 1000000, 'active', 30, 0, 'cli',
       start - interval '40 days'
  FROM long_times;

INSERT INTO orders (business_id, id, customer_id, total, created_at, due_at)
SELECT :'business'::uuid, md5(:'business' || ':long:order:' || k)::uuid,
       md5(:'business' || ':long:customer')::uuid, 1000, at, at + interval '30 days'
  FROM long_times,
       LATERAL generate_series(1, :pairs) AS k,
       LATERAL (SELECT start + (2 * k - 1) * interval :'spacing' AS at) t;

INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total)
SELECT :'business'::uuid, md5(:'business' || ':long:order:' || k)::uuid, 1,
       md5(:'business' || ':long:product')::uuid, 1, 1000, 1000
  FROM generate_series(1, :pairs) AS k;

-- Entry s: a purchase (odd) or the payment of it (even).
INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after,
                           purchases_to_date, order_id, due_at, created_at)
SELECT :'business'::uuid, md5(:'business' || ':long:entry:' || s)::uuid,
       md5(:'business' || ':long:customer')::uuid, s,
       CASE WHEN s % 2 = 1 THEN 'purchase' ELSE 'payment' END,
       CASE WHEN s % 2 = 1 THEN 1000 ELSE -1000 END,
       CASE WHEN s % 2 = 1 THEN 1000 ELSE 0 END,
       1000 * ((s + 1) / 2),
       CASE WHEN s % 2 = 1 THEN md5(:'business' || ':long:order:' || (s + 1) / 2)::uuid END,
       CASE WHEN s % 2 = 1 THEN start + s * interval :'spacing' + interval '30 days' END,
       start + s * interval :'spacing'
  FROM long_times, generate_series(1, 2 * :pairs) AS s;

-- Written with triggers off, this history has no events (the outbox is a
-- trigger): it is imported history, like what existed before events began
-- (migration 0005), and is declared so, for `ontab audit`'s
-- events_complete to count from after it. Every other check still reads it.
INSERT INTO events_baseline AS b (business_id, type, existing)
VALUES (:'business'::uuid, 'customer.created', 1),
       (:'business'::uuid, 'product.created', 1),
       (:'business'::uuid, 'purchase.created', :pairs),
       (:'business'::uuid, 'payment.recorded', :pairs)
ON CONFLICT (business_id, type) DO UPDATE SET existing = b.existing + excluded.existing;
COMMIT;

VACUUM ANALYZE customers, products, orders, order_items, credit_ledger, customer_changes;
