#!/usr/bin/env bash
# What a group-committed purchase costs PostgreSQL, without HTTP: pgbench
# calls ontab_purchase_batch (ORDERS two-line purchases of random customers
# and products, as bench/run.sh's uncontended scenario sends) on a database
# migrated by this checkout's ontab and, with BASE, on one migrated by that
# commit's, alternating, in one throwaway cluster with pg_stat_statements.
# Prints, per round, purchases/s and the cluster's CPU per purchase (every
# PostgreSQL process, from /proc, so commit and the WAL writer count), then
# the statements and functions by time per purchase. The server, the
# network and the sequencer are not in it: it isolates the database's share
# of a purchase, which a load test over HTTP measures only as a total.
#
#   bench/batch_cost.sh                    # this checkout alone
#   BASE=76a6c31 bench/batch_cost.sh       # that commit against this checkout
#   FLOOR=1 bench/batch_cost.sh            # and the floor, alternating
#
# FLOOR=1 adds a third database, "floor": the same rows a batch writes (its
# orders, two lines each, ledger entries, events with a small JSON, the
# stock subtracted) into copies of the tables with their columns, defaults,
# CHECK constraints and indexes but no trigger, foreign key or row level
# security, in one statement per batch. What writing the rows costs with
# none of the guards: the least any design holding these rows could pay.
#
# Environment (defaults in brackets): BASE, BASE_BIN (BASE's ontab, built
# before: skips the build), ORDERS [16] per batch, CLIENTS
# [1] pgbench clients (1: no lock waits, the time is CPU and commit),
# SECONDS_EACH [20], ROUNDS [3], PG_PORT [5497], CUSTOMERS and PRODUCTS
# [1000].
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BASE=${BASE:-}
ORDERS=${ORDERS:-16}
CLIENTS=${CLIENTS:-1}
SECONDS_EACH=${SECONDS_EACH:-20}
ROUNDS=${ROUNDS:-3}
PG_PORT=${PG_PORT:-5497}
CUSTOMERS=${CUSTOMERS:-1000}
PRODUCTS=${PRODUCTS:-1000}
FLOOR=${FLOOR:-}
BUSINESS=00000000-0000-4000-8000-0000000000b1
step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench/batch_cost.sh: %s\n' "$*" >&2; exit 2; }
command -v pgbench >/dev/null || die "needs pgbench (Debian package postgresql-contrib or postgresql)"
[ $((PRODUCTS % 2)) = 0 ] || die "PRODUCTS must be even (each order's two lines draw from its two halves)"

step "building this checkout's ontab (release)"
cargo build --release --locked -p ontab >&2
target_dir=${CARGO_TARGET_DIR:-target}
declare -A binary=([head]=$target_dir/release/ontab)
builds=(head)
work=$(mktemp -d /tmp/ontab-batch-cost.XXXXXX)
# Its own directory: initdb runs as postgres, which may not enter $work.
cluster=$(mktemp -d /tmp/ontab-batch-cost-pg.XXXXXX)
cleanup() {
    stop_throwaway_cluster "$cluster"
    git worktree prune 2>/dev/null || true
    rm -rf "$work" "$cluster"
}
trap cleanup EXIT
if [ -n "$BASE" ] && [ -n "${BASE_BIN:-}" ]; then
    # BASE's binary, built before (e.g. target/compare-base/release/ontab).
    binary[base]=$BASE_BIN
    builds=(base head)
elif [ -n "$BASE" ]; then
    base_rev=$(git rev-parse --verify "$BASE^{commit}") || die "BASE '$BASE' is not a commit"
    step "building ontab at ${base_rev:0:10} (release, in a worktree)"
    build_ontab_at "$base_rev" "$work" || die "ontab at ${base_rev:0:10} did not build"
    binary[base]=$work/ontab-base
    builds=(base head)
fi
[ -n "$FLOOR" ] && { binary[floor]=${binary[head]}; builds+=(floor); }

step "starting a throwaway PostgreSQL (:$PG_PORT) with pg_stat_statements"
start_throwaway_cluster "$cluster" "$PG_PORT" \
    -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c track_functions=all
postmaster=$(head -1 "$cluster/data/postmaster.pid")
url() { echo "host=127.0.0.1 port=$PG_PORT user=postgres dbname=$1"; }

for build in "${builds[@]}"; do
    step "database ontab_$build: migrated by the $build build, $CUSTOMERS customers, $PRODUCTS products"
    psql -qX "$(url postgres)" -c "CREATE DATABASE ontab_$build" >/dev/null
    "${binary[$build]}" migrate --database-url "$(url "ontab_$build")" >/dev/null
    psql -qX "$(url "ontab_$build")" >/dev/null <<SQL
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
BEGIN;
SELECT set_config('ontab.business_id', '$BUSINESS', true);
INSERT INTO businesses (id, name, currency) VALUES ('$BUSINESS', 'Bench', 'USD');
INSERT INTO customers (business_id, id, name, credit_limit)
SELECT '$BUSINESS', md5('c' || n)::uuid, 'C' || n, 9000000000000000 FROM generate_series(1, $CUSTOMERS) n;
INSERT INTO products (business_id, id, name, price, stock, initial_stock)
SELECT '$BUSINESS', md5('p' || n)::uuid, 'P' || n, 100, 9000000000000, 9000000000000
  FROM generate_series(1, $PRODUCTS) n;
COMMIT;
ANALYZE;
SQL
done
if [ -n "$FLOOR" ]; then
    psql -qX "$(url ontab_floor)" >/dev/null <<'SQL'
CREATE SEQUENCE f_seq;
CREATE TABLE f_orders (LIKE orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
CREATE TABLE f_order_items (LIKE order_items INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
CREATE TABLE f_credit_ledger (LIKE credit_ledger INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
CREATE TABLE f_events (LIKE events INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
CREATE TABLE f_products (LIKE products INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
INSERT INTO f_products SELECT * FROM products;
ANALYZE f_products;
SQL
fi

# A batch as the server's group commit sends it, as ontab_app: lines grouped
# by order, each order's two products distinct (one from each half).
script=$work/batch.sql
half=$((PRODUCTS / 2))
cat >"$script" <<SQL
BEGIN;
SELECT set_config('ontab.business_id', '$BUSINESS', true);
SET LOCAL ROLE ontab_app;
SELECT ontab_purchase_batch(
    (SELECT array_agg(gen_random_uuid()) FROM generate_series(1, $ORDERS)),
    (SELECT array_agg(gen_random_uuid()) FROM generate_series(1, $ORDERS)),
    (SELECT array_agg(md5('c' || (1 + floor(random() * $CUSTOMERS))::int)::uuid) FROM generate_series(1, $ORDERS)),
    (SELECT array_agg((n + 1) / 2) FROM generate_series(1, 2 * $ORDERS) n),
    (SELECT array_agg(md5('p' || (1 + (n % 2) * $half + floor(random() * $half))::int)::uuid)
       FROM generate_series(1, 2 * $ORDERS) n),
    (SELECT array_agg(1::bigint) FROM generate_series(1, 2 * $ORDERS)));
COMMIT;
SQL

# The floor: the same rows, one statement (with data-modifying CTEs) per
# batch, as the owner, into the unguarded copies.
cat >"$work/floor.sql" <<SQL
BEGIN;
WITH o AS (SELECT gen_random_uuid() AS id, gen_random_uuid() AS entry,
                  md5('c' || (1 + floor(random() * $CUSTOMERS))::int)::uuid AS customer
             FROM generate_series(1, $ORDERS) n),
l AS (SELECT o.id AS order_id, k AS line_no,
             md5('p' || (1 + (k % 2) * $half + floor(random() * $half))::int)::uuid AS product
        FROM o, generate_series(1, 2) k),
io AS (INSERT INTO f_orders (business_id, id, customer_id, total, created_at, due_at)
       SELECT '$BUSINESS', id, customer, 200, now(), now() + interval '30 days' FROM o),
il AS (INSERT INTO f_order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total)
       SELECT '$BUSINESS', order_id, line_no, product, 1, 100, 100 FROM l),
ie AS (INSERT INTO f_credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after,
                                    purchases_to_date, order_id, created_at, due_at)
       SELECT '$BUSINESS', entry, customer, nextval('f_seq'), 'purchase', 200, 200, 200, id, now(),
              now() + interval '30 days' FROM o),
iv AS (INSERT INTO f_events (business_id, id, type, subject_id, data)
       SELECT '$BUSINESS', gen_random_uuid(), 'purchase.created', customer,
              jsonb_build_object('id', id, 'customer_id', customer, 'total', 200) FROM o)
UPDATE f_products p SET stock = p.stock - 1
  FROM l WHERE p.business_id = '$BUSINESS' AND p.id = l.product;
COMMIT;
SQL
script_of() { if [ "$1" = floor ]; then echo "$work/floor.sql"; else echo "$script"; fi; }

hz=$(getconf CLK_TCK)
declare -A purchases=()
# run BUILD ROUND: one pgbench run; prints a table row, adds to purchases[].
run() {
    local build=$1 round=$2 before after out tx
    before=$(cluster_cpu_ticks "$postmaster")
    out=$(pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_EACH" -f "$(script_of "$build")" "$(url "ontab_$build")" 2>&1) \
        || die "pgbench on ontab_$build failed: $out"
    # Backends exit after pgbench does; wait until the postmaster reaped them.
    sleep 1
    after=$(cluster_cpu_ticks "$postmaster")
    tx=$(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1] }' <<<"$out")
    purchases[$build]=$(( ${purchases[$build]:-0} + tx * ORDERS ))
    awk -v b="$build" -v r="$round" -v tx="$tx" -v o="$ORDERS" -v s="$SECONDS_EACH" -v t=$((after - before)) -v hz="$hz" \
        'BEGIN { printf "| %s | %s | %.0f | %.0f |\n", r, b, tx * o / s, t / hz * 1e6 / (tx * o) }'
}

echo "# ontab_purchase_batch alone: $ORDERS two-line purchases per batch, $CLIENTS client(s), ${SECONDS_EACH} s runs"
echo
echo "head: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo ' (+ uncommitted changes)')${BASE:+, base: $BASE}"
echo
echo "| round | build | purchases/s | PostgreSQL CPU µs per purchase |"
echo "|---|---|---:|---:|"
psql -qXAt "$(url postgres)" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
    -c "SELECT pg_stat_statements_reset()" >/dev/null
# A first run of each build fills the caches and plans; not reported, and
# not in the statistics.
for build in "${builds[@]}"; do
    pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T 5 -f "$(script_of "$build")" "$(url "ontab_$build")" >/dev/null 2>&1 \
        || die "pgbench on ontab_$build failed"
done
psql -qXAt "$(url postgres)" -c "SELECT pg_stat_statements_reset()" >/dev/null
for db in "${builds[@]}"; do psql -qXAt "$(url "ontab_$db")" -c "SELECT pg_stat_reset()" >/dev/null; done
for round in $(seq "$ROUNDS"); do
    for build in "${builds[@]}"; do
        run "$build" "$round"
    done
done

for build in "${builds[@]}"; do
    echo
    echo "## $build: statements by wall time per purchase (pg_stat_statements, all rounds)"
    echo
    echo "| µs per purchase | calls per purchase | statement |"
    echo "|---:|---:|---|"
    psql -qXAt -F $'\t' "$(url "ontab_$build")" -c "
        SELECT round((s.total_exec_time * 1000 / ${purchases[$build]})::numeric, 1),
               round(s.calls::numeric / ${purchases[$build]}, 2),
               replace(left(regexp_replace(s.query, '\s+', ' ', 'g'), 100), '|', '\|')
          FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
         WHERE d.datname = 'ontab_$build' AND s.calls > 1
         ORDER BY s.total_exec_time DESC LIMIT 16" | awk -F '\t' '{ printf "| %s | %s | `%s` |\n", $1, $2, $3 }'
    echo
    echo "Functions (pg_stat_user_functions), µs per purchase, total / self:"
    echo
    psql -qXAt -F ' ' "$(url "ontab_$build")" -c "
        SELECT '- ' || funcname || ': ' || round((total_time * 1000 / ${purchases[$build]})::numeric, 1)
               || ' / ' || round((self_time * 1000 / ${purchases[$build]})::numeric, 1)
          FROM pg_stat_user_functions WHERE calls > 1 ORDER BY total_time DESC LIMIT 8"
done
