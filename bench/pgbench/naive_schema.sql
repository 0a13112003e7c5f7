-- The original design's schema, shaped like ontab's but simpler: one
-- tenant (no business_id), bigint keys, no triggers, no row level
-- security, and no running balance: the balance is SUM(amount) over the
-- customer's whole ledger, computed on every purchase.
--
-- Recreated before every baseline run so each starts from an empty ledger.
DROP TABLE IF EXISTS credit_ledger, order_items, orders, products, customers;

CREATE TABLE customers (
    id            bigint PRIMARY KEY,
    name          text NOT NULL,
    credit_limit  bigint NOT NULL CHECK (credit_limit >= 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          bigint PRIMARY KEY,
    name        text NOT NULL,
    price       bigint NOT NULL CHECK (price >= 0),
    stock       bigint NOT NULL CHECK (stock >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id           bigserial PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (id),
    total        bigint NOT NULL CHECK (total >= 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_by_customer ON orders (customer_id, created_at DESC);

CREATE TABLE order_items (
    order_id    bigint NOT NULL REFERENCES orders (id),
    product_id  bigint NOT NULL REFERENCES products (id),
    quantity    bigint NOT NULL CHECK (quantity > 0),
    unit_price  bigint NOT NULL,
    line_total  bigint NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE credit_ledger (
    id           bigserial PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (id),
    kind         text NOT NULL CHECK (kind IN ('purchase', 'payment', 'return')),
    amount       bigint NOT NULL,
    order_id     bigint REFERENCES orders (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- The SUM is an index range scan over the customer's entries, not a seq scan.
CREATE INDEX credit_ledger_by_customer ON credit_ledger (customer_id);

-- Same sizes as ontab-load's uncontended scenario: 1,000 customers whose
-- limit is never reached, 1,000 products whose stock never runs out.
INSERT INTO customers (id, name, credit_limit)
SELECT g, 'customer ' || g, 1000000000000 FROM generate_series(1, 1000) AS g;
INSERT INTO products (id, name, price, stock)
SELECT g, 'product ' || g, 100 + (g * 7919) % 9901, 1000000000 FROM generate_series(1, 1000) AS g;
ANALYZE;
