-- ontab schema: roles, tables, keys, CHECKs and indexes.
--
-- Guarantees established here:
-- * Every tenant table carries business_id, and every primary, unique and
--   foreign key between tenant tables includes it, so no row can reference a
--   row of another business (and the data can be sharded by business_id).
-- * Money is bigint minor units; prices, limits, stock, quantities and
--   every amount stay within ±(2^53 - 1) = ±9007199254740991, the integers
--   every JSON client reads exactly (the API refuses more with a 422 before
--   any of these CHECKs would fire); stock can never be negative.
-- * The ledger is a chain per customer: (business_id, customer_id, seq) is
--   unique, so two writers can never both append entry n+1.
-- * Every credit limit, status and payment terms a customer has had is kept
--   (customer_changes),
--   with the ledger position from which it applies.
-- What may be written, by whom, and in which combination is the business of
-- 0002 (guards), 0003 (row level security, grants) and 0004 (use cases).

-- Roles are cluster-wide and several databases (one per test) may migrate at
-- once, so creation tolerates a concurrent twin. None can log in, none is a
-- superuser or bypasses row level security; what each may do is granted in
-- 0003 and 0004.
-- * ontab_app: what the server's queries run as. Reads its tenant's rows,
--   creates and edits businesses, keys, customers and products, and moves
--   money and stock only by calling the use-case functions (0004). Owns
--   nothing.
-- * ontab_writer: owns the use-case functions (SECURITY DEFINER) and may
--   write exactly what they write: orders, returns and their lines, ledger
--   entries, stock adjustments, products' stock. No one logs in as it or is
--   granted it (bar the migrating role), so these writes happen only
--   through the functions, each together with its reason.
-- * ontab_recorder: owns the trigger function that records customers'
--   limit, status and terms changes (0002); the only role that may append
--   to customer_changes, so that history cannot be forged.
-- * ontab_reserver: owns the triggers that keep products.reserved and
--   customers.held the sums of what pending holds reserve (0002); the only
--   role that may write those two columns.
-- * ontab_system: owns the SECURITY DEFINER functions that must look across
--   tenants (API key lookup, idempotency expiry, the audit's business list);
--   its policies let it see exactly those tables and nothing else.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['ontab_app', 'ontab_writer', 'ontab_recorder', 'ontab_reserver', 'ontab_system'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
        -- The migrating user sets ontab_app per transaction and hands
        -- functions to the others, so it must be a member of each.
        IF NOT pg_has_role(current_user, r, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', r, current_user);
        END IF;
    END LOOP;
END
$$;

CREATE TABLE businesses (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- The payment terms a new customer gets unless it is given its own.
    payment_terms_days  int NOT NULL DEFAULT 30 CHECK (payment_terms_days BETWEEN 0 AND 365),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only a SHA-256 of the secret is stored. `id` is globally unique on its own
-- because authentication looks a key up before the tenant is known.
CREATE TABLE api_keys (
    business_id  uuid NOT NULL REFERENCES businesses (id),
    id           uuid NOT NULL UNIQUE,
    secret_sha256 bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (business_id, id)
);

CREATE TABLE customers (
    business_id   uuid NOT NULL REFERENCES businesses (id),
    id            uuid NOT NULL,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    credit_limit  bigint NOT NULL CHECK (credit_limit BETWEEN 0 AND 9007199254740991),
    -- active: buys on credit; on_hold: may pay, return and be written off,
    -- but not buy; closed: final, reached only from a zero balance, and no
    -- money or stock moves for it again (0002 holds all three).
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'on_hold', 'closed')),
    -- Days from a purchase to its due date; the terms in force when a
    -- purchase is made fix its due_at for good.
    payment_terms_days  int NOT NULL CHECK (payment_terms_days BETWEEN 0 AND 365),
    -- The credit its pending holds reserve: the sum of its pending_holds,
    -- kept by triggers on that table (0002), never written otherwise.
    held          bigint NOT NULL DEFAULT 0 CHECK (held BETWEEN 0 AND 9007199254740991),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id)
);
CREATE INDEX customers_by_creation ON customers (business_id, created_at, id);

-- initial_stock is kept so that stock can always be reconciled:
-- stock = initial_stock + adjustments - sold + returned.
CREATE TABLE products (
    business_id    uuid NOT NULL REFERENCES businesses (id),
    id             uuid NOT NULL,
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    price          bigint NOT NULL CHECK (price BETWEEN 0 AND 9007199254740991),
    stock          bigint NOT NULL CHECK (stock BETWEEN 0 AND 9007199254740991),
    initial_stock  bigint NOT NULL CHECK (initial_stock BETWEEN 0 AND 9007199254740991),
    -- The units its pending holds reserve: the sum of its
    -- pending_hold_items, kept by triggers on that table (0002). Never more
    -- than the stock: what is reserved cannot be sold, adjusted away, or
    -- reserved twice.
    reserved       bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    CONSTRAINT products_stock_covers_reserved CHECK (reserved BETWEEN 0 AND stock)
);
CREATE INDEX products_by_creation ON products (business_id, created_at, id);

-- Holds: stock and credit reserved now, at today's prices, and captured
-- (an ordinary order) or released (voided, or expired) later. A hold, its
-- lines and how it ended are history, never changed; what a hold still
-- reserves is in pending_holds and pending_hold_items, which exist exactly
-- while the reservation does.
CREATE TABLE holds (
    business_id  uuid NOT NULL,
    id           uuid NOT NULL,
    customer_id  uuid NOT NULL,
    total        bigint NOT NULL CHECK (total BETWEEN 0 AND 9007199254740991),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- From then on it reserves nothing and can never be captured, whether
    -- or not anything has recorded its expiry yet (0004).
    expires_at   timestamptz NOT NULL,
    CHECK (expires_at > created_at),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id)
);
CREATE INDEX holds_newest_first ON holds (business_id, created_at DESC, id DESC);
CREATE INDEX holds_by_customer ON holds (business_id, customer_id, created_at DESC, id DESC);

CREATE TABLE hold_items (
    business_id  uuid NOT NULL,
    hold_id      uuid NOT NULL,
    line_no      int NOT NULL CHECK (line_no >= 1),
    product_id   uuid NOT NULL,
    quantity     bigint NOT NULL CHECK (quantity BETWEEN 1 AND 9007199254740991),
    unit_price   bigint NOT NULL CHECK (unit_price BETWEEN 0 AND 9007199254740991),
    line_total   bigint NOT NULL CHECK (line_total <= 9007199254740991),
    PRIMARY KEY (business_id, hold_id, product_id),
    UNIQUE (business_id, hold_id, line_no),
    CHECK (line_total = quantity * unit_price),
    FOREIGN KEY (business_id, hold_id) REFERENCES holds (business_id, id),
    FOREIGN KEY (business_id, product_id) REFERENCES products (business_id, id)
);

-- What a hold reserves while it is pending: the customer's credit (one row)
-- and each line's units (one row per product). A capture, a void or an
-- expiry deletes them, with the hold's ending; a decision that finds a
-- product's reservation expired may release that line early (0004).
CREATE TABLE pending_holds (
    business_id  uuid NOT NULL,
    hold_id      uuid NOT NULL,
    customer_id  uuid NOT NULL,
    total        bigint NOT NULL CHECK (total BETWEEN 0 AND 9007199254740991),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (business_id, hold_id),
    FOREIGN KEY (business_id, hold_id) REFERENCES holds (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id)
);
-- A customer's credit still reserved is its held minus its expired rows:
-- one range of this index.
CREATE INDEX pending_holds_by_customer ON pending_holds (business_id, customer_id, expires_at);
-- The expiry sweep's work list, across tenants.
CREATE INDEX pending_holds_by_expiry ON pending_holds (expires_at);

CREATE TABLE pending_hold_items (
    business_id  uuid NOT NULL,
    hold_id      uuid NOT NULL,
    product_id   uuid NOT NULL,
    quantity     bigint NOT NULL CHECK (quantity BETWEEN 1 AND 9007199254740991),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (business_id, hold_id, product_id),
    FOREIGN KEY (business_id, hold_id, product_id) REFERENCES hold_items (business_id, hold_id, product_id)
);
-- A product's expired reservations: one range of this index (usually
-- empty, however many holds are pending).
CREATE INDEX pending_hold_items_by_product ON pending_hold_items (business_id, product_id, expires_at);

CREATE TABLE stock_adjustments (
    business_id  uuid NOT NULL,
    id           uuid NOT NULL,
    product_id   uuid NOT NULL,
    delta        bigint NOT NULL CHECK (delta <> 0 AND delta BETWEEN -9007199254740991 AND 9007199254740991),
    reason       text NOT NULL CHECK (char_length(reason) <= 200),
    stock_after  bigint NOT NULL CHECK (stock_after BETWEEN 0 AND 9007199254740991),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, product_id) REFERENCES products (business_id, id)
);
CREATE INDEX stock_adjustments_by_product ON stock_adjustments (business_id, product_id, created_at);

CREATE TABLE orders (
    business_id  uuid NOT NULL,
    id           uuid NOT NULL,
    customer_id  uuid NOT NULL,
    total        bigint NOT NULL CHECK (total BETWEEN 0 AND 9007199254740991),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- created_at + the customer's payment terms at purchase time; never
    -- moved by a later change of terms (history is immutable).
    due_at       timestamptz NOT NULL,
    -- The hold this order captured, if any (at the hold's prices).
    hold_id      uuid,
    CHECK (due_at >= created_at),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id),
    FOREIGN KEY (business_id, hold_id) REFERENCES holds (business_id, id)
);
-- A hold is captured by one order at most.
CREATE UNIQUE INDEX orders_one_per_hold ON orders (business_id, hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX orders_newest_first ON orders (business_id, created_at DESC, id DESC);
CREATE INDEX orders_by_customer ON orders (business_id, customer_id, created_at DESC, id DESC);

-- One line per product: duplicate request lines are merged before insert.
CREATE TABLE order_items (
    business_id  uuid NOT NULL,
    order_id     uuid NOT NULL,
    line_no      int NOT NULL CHECK (line_no >= 1),
    product_id   uuid NOT NULL,
    quantity     bigint NOT NULL CHECK (quantity BETWEEN 1 AND 9007199254740991),
    unit_price   bigint NOT NULL CHECK (unit_price BETWEEN 0 AND 9007199254740991),
    line_total   bigint NOT NULL CHECK (line_total <= 9007199254740991),
    PRIMARY KEY (business_id, order_id, product_id),
    UNIQUE (business_id, order_id, line_no),
    CHECK (line_total = quantity * unit_price),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id),
    FOREIGN KEY (business_id, product_id) REFERENCES products (business_id, id)
);

CREATE TABLE returns (
    business_id  uuid NOT NULL,
    id           uuid NOT NULL,
    order_id     uuid NOT NULL,
    amount       bigint NOT NULL CHECK (amount BETWEEN 0 AND 9007199254740991),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id)
);
CREATE INDEX returns_by_order ON returns (business_id, order_id, created_at);

CREATE TABLE return_items (
    business_id  uuid NOT NULL,
    return_id    uuid NOT NULL,
    order_id     uuid NOT NULL,
    line_no      int NOT NULL CHECK (line_no >= 1),
    product_id   uuid NOT NULL,
    quantity     bigint NOT NULL CHECK (quantity BETWEEN 1 AND 9007199254740991),
    unit_price   bigint NOT NULL CHECK (unit_price BETWEEN 0 AND 9007199254740991),
    line_total   bigint NOT NULL CHECK (line_total <= 9007199254740991),
    PRIMARY KEY (business_id, return_id, product_id),
    CHECK (line_total = quantity * unit_price),
    FOREIGN KEY (business_id, return_id) REFERENCES returns (business_id, id),
    -- A returned product must be a line of the order it is returned from.
    FOREIGN KEY (business_id, order_id, product_id)
        REFERENCES order_items (business_id, order_id, product_id)
);
CREATE INDEX return_items_by_order_line ON return_items (business_id, order_id, product_id);

-- The credit ledger: append-only, one chain per customer. balance_after is
-- the running balance, so the current balance is the newest entry's, found
-- by an index probe rather than a SUM over history.
CREATE TABLE credit_ledger (
    business_id    uuid NOT NULL,
    id             uuid NOT NULL,
    customer_id    uuid NOT NULL,
    seq            bigint NOT NULL CHECK (seq >= 1),
    kind           text NOT NULL CHECK (kind IN ('purchase', 'payment', 'return', 'write_off')),
    amount         bigint NOT NULL CHECK (amount BETWEEN -9007199254740991 AND 9007199254740991),
    balance_after  bigint NOT NULL CHECK (balance_after BETWEEN -9007199254740991 AND 9007199254740991),
    order_id       uuid,
    return_id      uuid,
    -- Never before the previous entry's (0002), so a period of time is a
    -- range of the chain: statements chain exactly.
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- A purchase's due date (its order's); null for other kinds.
    due_at         timestamptz,
    -- Why a write-off was granted; null for other kinds.
    reason         text CHECK (char_length(reason) BETWEEN 1 AND 200),
    -- The hold a purchase captured: its credit was reserved by the hold.
    hold_id        uuid,
    -- The sum of the customer's purchase amounts up to and including this
    -- entry, set by the chain trigger (0002) whatever the writer sent. With
    -- it, FIFO settlement is a range query: at the newest entry,
    -- purchases_to_date - balance_after is everything ever credited
    -- (payments and returns), and a purchase is not yet fully settled exactly
    -- when its purchases_to_date exceeds that. bigint, like every amount: its
    -- comparison is leakproof, so under row level security the report's
    -- range condition is an index condition (numeric's is not, and would
    -- mean scanning every purchase). The price: a customer's lifetime
    -- purchases must stay below 9.2e18 minor units.
    purchases_to_date  bigint NOT NULL
        CONSTRAINT credit_ledger_purchases_to_date_nonnegative CHECK (purchases_to_date >= 0),
    PRIMARY KEY (business_id, id),
    UNIQUE (business_id, customer_id, seq),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id),
    FOREIGN KEY (business_id, return_id) REFERENCES returns (business_id, id),
    CHECK (
        -- zero-amount purchases and returns exist: products may be free
        (kind = 'purchase' AND amount >= 0 AND order_id IS NOT NULL AND return_id IS NULL)
     OR (kind = 'payment'  AND amount < 0 AND order_id IS NULL AND return_id IS NULL)
     OR (kind = 'return'   AND amount <= 0 AND order_id IS NOT NULL AND return_id IS NOT NULL)
     -- bad debt forgiven: a credit with its reason
     OR (kind = 'write_off' AND amount < 0 AND order_id IS NULL AND return_id IS NULL)
    ),
    CHECK ((kind = 'purchase') = (due_at IS NOT NULL)),
    CHECK ((kind = 'write_off') = (reason IS NOT NULL)),
    CHECK (hold_id IS NULL OR kind = 'purchase')
);
-- At most one ledger entry per order and per return.
CREATE UNIQUE INDEX credit_ledger_one_per_order
    ON credit_ledger (business_id, order_id) WHERE kind = 'purchase';
CREATE UNIQUE INDEX credit_ledger_one_per_return
    ON credit_ledger (business_id, return_id) WHERE kind = 'return';
-- The unsettled purchases of a customer (the overdue report) are one range
-- of this index; INCLUDE lets the report read them without visiting the
-- table. Zero-amount purchases are never owed, and leaving them out keeps
-- the guards' lookups of a purchase by order (WHERE ... kind = 'purchase')
-- from matching this index: without statistics the planner could pick it
-- over credit_ledger_one_per_order and scan every purchase of the business.
CREATE INDEX credit_ledger_open_purchases
    ON credit_ledger (business_id, customer_id, purchases_to_date)
    INCLUDE (amount, created_at, due_at)
    WHERE kind = 'purchase' AND amount > 0;
-- A statement's period is found by time: the last entry before `from` (the
-- opening balance) and the first at or after `to` are one probe each.
CREATE INDEX credit_ledger_by_time
    ON credit_ledger (business_id, customer_id, created_at, seq);

-- Every credit limit, status and payment terms a customer has had,
-- append-only: one row when it is created and one per change of any of the
-- three, holding the values in force from then on (the previous row holds
-- the values before). Written by a trigger on customers (0002) while the
-- customer's row is locked, the same lock every ledger append takes first:
-- so "the limit, status and terms in force for entry n" are exact, and
-- `ontab audit` checks each entry against them.
CREATE TABLE customer_changes (
    business_id   uuid NOT NULL,
    -- Orders the changes of one customer: they are serialized by its row
    -- lock, and the value is drawn while the lock is held.
    id            bigint GENERATED ALWAYS AS IDENTITY,
    customer_id   uuid NOT NULL,
    credit_limit  bigint NOT NULL CHECK (credit_limit BETWEEN 0 AND 9007199254740991),
    status        text NOT NULL CHECK (status IN ('active', 'on_hold', 'closed')),
    payment_terms_days  int NOT NULL CHECK (payment_terms_days BETWEEN 0 AND 365),
    -- The values govern the customer's ledger entries with seq > after_seq.
    after_seq     bigint NOT NULL CHECK (after_seq >= 0),
    changed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Who: the API key acting (its id), or `admin`, `cli`, `system`.
    changed_by    text NOT NULL CHECK (char_length(changed_by) BETWEEN 1 AND 64),
    PRIMARY KEY (business_id, id),
    FOREIGN KEY (business_id, customer_id) REFERENCES customers (business_id, id)
);
CREATE INDEX customer_changes_by_customer
    ON customer_changes (business_id, customer_id, id);

-- How each hold ended, once: captured (with its order), voided, or expired.
-- Written with the release of what it reserved.
CREATE TABLE hold_endings (
    business_id  uuid NOT NULL,
    hold_id      uuid NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('captured', 'voided', 'expired')),
    order_id     uuid,
    ended_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, hold_id),
    CHECK ((outcome = 'captured') = (order_id IS NOT NULL)),
    FOREIGN KEY (business_id, hold_id) REFERENCES holds (business_id, id),
    FOREIGN KEY (business_id, order_id) REFERENCES orders (business_id, id)
);

-- Stored outcomes of requests sent with an Idempotency-Key. A row is written
-- in the same transaction as the effect it guards.
CREATE TABLE idempotency_keys (
    business_id  uuid NOT NULL REFERENCES businesses (id),
    key          text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    fingerprint  bytea NOT NULL,
    status       int NOT NULL CHECK (status BETWEEN 200 AND 499),
    -- json, not jsonb: a replay must be byte-identical to the first answer,
    -- and jsonb would reorder its keys.
    body         json NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
