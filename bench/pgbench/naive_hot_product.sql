-- The original purchase flow, hot-product case: every client buys one unit
-- of product 1, each client for its own customer. One interactive
-- transaction, one round trip per step; the checks happen in the client
-- (pgbench's \if) between round trips, as an application would do them.
\set customer :client_id % 1000 + 1
\set product 1
BEGIN;
SELECT credit_limit FROM customers WHERE id = :customer FOR UPDATE \gset
SELECT coalesce(sum(amount), 0) AS balance FROM credit_ledger WHERE customer_id = :customer \gset
SELECT price, stock FROM products WHERE id = :product FOR UPDATE \gset
\if :stock >= 1 and :balance + :price <= :credit_limit
INSERT INTO orders (customer_id, total) VALUES (:customer, :price) RETURNING id AS order_id \gset
UPDATE products SET stock = stock - 1 WHERE id = :product;
INSERT INTO order_items (order_id, product_id, quantity, unit_price, line_total) VALUES (:order_id, :product, 1, :price, :price);
INSERT INTO credit_ledger (customer_id, kind, amount, order_id) VALUES (:customer, 'purchase', :price, :order_id);
COMMIT;
\else
ROLLBACK;
\endif
