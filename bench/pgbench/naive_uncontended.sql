-- The original purchase flow, uncontended case: a 2-line purchase (one unit
-- each of two different random products) for a random customer of 1,000.
-- Products are locked in id order, as any deadlock-free client must.
\set customer random(1, 1000)
\set first random(1, 1000)
\set offset random(1, 999)
\set second (:first + :offset - 1) % 1000 + 1
\set p1 least(:first, :second)
\set p2 greatest(:first, :second)
BEGIN;
SELECT credit_limit FROM customers WHERE id = :customer FOR UPDATE \gset
SELECT coalesce(sum(amount), 0) AS balance FROM credit_ledger WHERE customer_id = :customer \gset
SELECT price AS price1, stock AS stock1 FROM products WHERE id = :p1 FOR UPDATE \gset
SELECT price AS price2, stock AS stock2 FROM products WHERE id = :p2 FOR UPDATE \gset
\set total :price1 + :price2
\if :stock1 >= 1 and :stock2 >= 1 and :balance + :total <= :credit_limit
INSERT INTO orders (customer_id, total) VALUES (:customer, :total) RETURNING id AS order_id \gset
UPDATE products SET stock = stock - 1 WHERE id = :p1;
INSERT INTO order_items (order_id, product_id, quantity, unit_price, line_total) VALUES (:order_id, :p1, 1, :price1, :price1);
UPDATE products SET stock = stock - 1 WHERE id = :p2;
INSERT INTO order_items (order_id, product_id, quantity, unit_price, line_total) VALUES (:order_id, :p2, 1, :price2, :price2);
INSERT INTO credit_ledger (customer_id, kind, amount, order_id) VALUES (:customer, 'purchase', :total, :order_id);
COMMIT;
\else
ROLLBACK;
\endif
