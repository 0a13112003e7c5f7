#!/usr/bin/env bash
# What writing events costs a purchase, in the database: pgbench runs the
# same group-committed purchase batches (ontab_purchase_batch, 32 orders of
# random customers and products) with the event triggers enabled and
# disabled, alternating, on one database, and prints each run's orders/s.
#
#   bench/events_write_cost.sh
#
# Environment (defaults in brackets):
#   BENCH_PG [postgres://postgres@127.0.0.1:5432]  superuser URL, no database
#   CLIENTS  [4]     pgbench clients (each its own batches)
#   SECONDS_EACH [15] per run; ROUNDS [2] on/off pairs
#   ONTAB_BIN [target/release/ontab, built if missing]
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
CLIENTS=${CLIENTS:-4}
SECONDS_EACH=${SECONDS_EACH:-15}
ROUNDS=${ROUNDS:-2}
ONTAB_BIN=${ONTAB_BIN:-target/release/ontab}
DB=ontab_bench_event_writes
BUSINESS=00000000-0000-4000-8000-0000000000b1

if [ ! -x "$ONTAB_BIN" ]; then
    cargo build --release --locked --bin ontab
fi
psql "$BENCH_PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
url="$BENCH_PG/$DB?sslmode=disable"
"$ONTAB_BIN" migrate --database-url "$url" >/dev/null

# 1000 customers and 1000 products with ids derived from their number, so
# the script can name them.
psql "$url" -q <<SQL
BEGIN;
SELECT set_config('ontab.business_id', '$BUSINESS', true);
INSERT INTO businesses (id, name, currency) VALUES ('$BUSINESS', 'Bench', 'USD');
INSERT INTO customers (business_id, id, name, credit_limit)
SELECT '$BUSINESS', md5('c' || n)::uuid, 'C' || n, 9000000000000000 FROM generate_series(1, 1000) n;
INSERT INTO products (business_id, id, name, price, stock, initial_stock)
SELECT '$BUSINESS', md5('p' || n)::uuid, 'P' || n, 100, 9000000000000, 9000000000000 FROM generate_series(1, 1000) n;
COMMIT;
SQL

script=$(mktemp)
trap 'rm -f "$script"' EXIT
cat >"$script" <<SQL
BEGIN;
SELECT set_config('ontab.business_id', '$BUSINESS', true);
SELECT ontab_purchase_batch(
    array_agg(gen_random_uuid()), array_agg(gen_random_uuid()),
    array_agg(md5('c' || (1 + floor(random() * 1000))::int)::uuid),
    array_agg(n), array_agg(md5('p' || (1 + floor(random() * 1000))::int)::uuid),
    array_agg(1::bigint))
  FROM generate_series(1, 32) n;
COMMIT;
SQL

run() {
    local tps
    tps=$(pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_EACH" -f "$script" "$url" 2>/dev/null \
          | awk '/^tps = / { print $3 }')
    awk -v tps="$tps" 'BEGIN { printf "%.0f", tps * 32 }'
}

echo "| run | events | orders/s |"
echo "|---|---|---|"
for round in $(seq "$ROUNDS"); do
    psql "$url" -qc "ALTER TABLE credit_ledger ENABLE TRIGGER credit_ledger_events"
    echo "| $round | on | $(run) |"
    psql "$url" -qc "ALTER TABLE credit_ledger DISABLE TRIGGER credit_ledger_events"
    echo "| $round | off | $(run) |"
done
psql "$url" -qc "ALTER TABLE credit_ledger ENABLE TRIGGER credit_ledger_events"
