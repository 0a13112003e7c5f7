-- A large, valid history for one business, to measure the overdue report:
-- 10,000 customers x 100 ledger entries = 1,000,000 entries (and 500,000
-- orders with their lines), spread over the last year.
--
--   psql "$DATABASE_URL" -v business=<uuid> [-v customers=10000] [-v pairs=50] \
--        -f bench/load_history.sql
--
-- The business must exist (create it through the API to get an API key).
-- Run as the migrating user (superuser or owner). Every trigger stays on:
-- each ledger entry passes the chain and limit checks, each order the
-- deferred total check at COMMIT, so the result is what years of real
-- traffic would leave (and `ontab audit` finds it clean).
--
-- Shape: each customer alternates a purchase of 1,000 (one unit of one of
-- 100 products) and a payment of 100 x (1 + customer % 10). Customers whose
-- number ends in 9 pay everything; the others carry balances of 5,000 to
-- 45,000, i.e. 5 to 45 unsettled purchases each, of every age: the report
-- lists 9,000 customers.

\set ON_ERROR_STOP on
\if :{?customers}
\else
    \set customers 10000
\endif
\if :{?pairs}
\else
    \set pairs 50
\endif

BEGIN;
-- As the server does it; a superuser bypasses row level security anyway.
SELECT set_config('ontab.business_id', :'business', true);

INSERT INTO products (business_id, id, name, price, stock, initial_stock)
SELECT :'business'::uuid, md5(:'business' || ':product:' || p)::uuid, 'Product ' || p,
       1000, 1000000000, 1000000000
  FROM generate_series(0, 99) AS p;

INSERT INTO customers (business_id, id, name, credit_limit, created_at)
SELECT :'business'::uuid, md5(:'business' || ':customer:' || c)::uuid, 'Customer ' || c,
       1000000000, now() - interval '400 days'
  FROM generate_series(1, :customers) AS c;

-- Entry s of customer c happens at now() - 365 days + s * 3.6 days (+ c
-- seconds, so customers do not tie): the newest is about 5 days old.
CREATE TEMP TABLE bench_purchases ON COMMIT DROP AS
SELECT c, j,
       md5(:'business' || ':order:' || c || ':' || j)::uuid AS order_id,
       md5(:'business' || ':product:' || ((c + j) % 100))::uuid AS product_id,
       now() - interval '365 days' + (2 * j - 1) * interval '3.6 days' + c * interval '1 second' AS at
  FROM generate_series(1, :customers) AS c, generate_series(1, :pairs) AS j;

-- due_at by the customer's terms, as a purchase fixes it (the ledger's
-- chain trigger derives the same date for the purchase entry).
INSERT INTO orders (business_id, id, customer_id, total, created_at, due_at)
SELECT :'business'::uuid, p.order_id, cu.id, 1000, p.at, p.at + make_interval(days => cu.payment_terms_days)
  FROM bench_purchases p
  JOIN customers cu ON cu.business_id = :'business'::uuid
                   AND cu.id = md5(:'business' || ':customer:' || p.c)::uuid;

INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total)
SELECT :'business'::uuid, order_id, 1, product_id, 1, 1000, 1000
  FROM bench_purchases;

-- In (customer, seq) order: each row's chain trigger reads the entry an
-- earlier row of this same statement appended.
INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, order_id, created_at)
SELECT :'business'::uuid,
       md5(:'business' || ':entry:' || c || ':' || s)::uuid,
       md5(:'business' || ':customer:' || c)::uuid,
       s,
       CASE WHEN s % 2 = 1 THEN 'purchase' ELSE 'payment' END,
       CASE WHEN s % 2 = 1 THEN 1000 ELSE -100 * (1 + c % 10) END,
       -- after j payments each pair has added 1000 - payment to the balance
       (s / 2) * (1000 - 100 * (1 + c % 10)) + CASE WHEN s % 2 = 1 THEN 1000 ELSE 0 END,
       CASE WHEN s % 2 = 1 THEN md5(:'business' || ':order:' || c || ':' || (s + 1) / 2)::uuid END,
       now() - interval '365 days' + s * interval '3.6 days' + c * interval '1 second'
  FROM generate_series(1, :customers) AS c, generate_series(1, 2 * :pairs) AS s
 ORDER BY c, s;

UPDATE products p
   SET stock = p.stock - sold.quantity
  FROM (SELECT product_id, count(*) AS quantity FROM bench_purchases GROUP BY product_id) sold
 WHERE p.business_id = :'business'::uuid AND p.id = sold.product_id;
COMMIT;

-- What autovacuum would have done by the time such a history exists:
-- statistics for the planner, a visibility map for index-only scans.
VACUUM ANALYZE customers, credit_ledger, orders, order_items, products;
