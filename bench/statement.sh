#!/usr/bin/env bash
# The statement benchmark: one customer with 1,000,000 ledger entries over
# about 9.5 years (bench/load_long_ledger.sql: 500,000 purchase + payment
# pairs 5 minutes apart, then `ontab audit` of it), then
#   1. 51 x GET /v1/customers/{id}/statement for the last month (JSON, first
#      page), and in the same run 51 x the same for a customer with no
#      entries (the baseline: what routing, auth and a statement cost
#      without history); prints p50 / p90 / max of each and the ratio;
#   2. the whole history as CSV (Accept: text/csv, 1,000,000 rows) while the
#      server's VmRSS is sampled every 50 ms from /proc/<pid>/status: idle
#      before, peak during, and the rows, bytes and seconds of the stream;
#      then the same again read at 2 MB/s (a slow client) for 10 s.
#
#   bench/statement.sh
#
# Environment: BENCH_PG [postgres://postgres@127.0.0.1:5432] (a throwaway
# cluster is started when nothing answers), BENCH_PORT [18092],
# PAIRS [500000] (entries = 2 x PAIRS), SPACING ['5 minutes'].
# The load takes minutes (every row through the guards): LOAD_ONLY=1 stops
# after it, REUSE=1 measures the database a previous run loaded (its
# business and key are kept in target/bench-*.env); ONTAB_BIN=path uses
# that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BENCH_PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
BENCH_PORT=${BENCH_PORT:-18092}
PAIRS=${PAIRS:-500000}
SPACING=${SPACING:-5 minutes}
db=ontab_bench_statement
step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench/statement.sh: %s\n' "$*" >&2; exit 2; }

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
missing=()
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "need ${missing[*]}: install them or run as root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

if [ -n "${ONTAB_BIN:-}" ]; then
    ontab=$ONTAB_BIN
else
    step "building ontab (release)"
    cargo build --release --locked -p ontab >&2
    ontab=${CARGO_TARGET_DIR:-target}/release/ontab
fi
# What the load left (business id and API key), for REUSE=1.
state=${CARGO_TARGET_DIR:-target}/bench-statement.env

work=$(mktemp -d /tmp/ontab-statement.XXXXXX)
server_pid=""
sampler_pid=""
cluster=""
cleanup() {
    if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    if [ -n "$cluster" ]; then as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$cluster"; fi
    rm -rf "$work"
}
trap cleanup EXIT

if ! "$pg_bin/pg_isready" -q -d "$BENCH_PG/postgres"; then
    step "no PostgreSQL at $BENCH_PG: starting a throwaway cluster"
    cluster=$(mktemp -d /tmp/ontab-statement-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$cluster"
    as_pg "$pg_bin/initdb" -D "$cluster/data" -U postgres --auth=trust >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p 55441 -k $cluster" start >/dev/null
    BENCH_PG=postgres://postgres@127.0.0.1:55441
fi
export DATABASE_URL=$BENCH_PG/$db

if [ "${REUSE:-0}" = 1 ] && [ -f "$state" ]; then
    # shellcheck disable=SC1090
    . "$state"
    step "reusing $db as loaded before (business $business_id)"
else
    step "fresh database $db, migrated, one business"
    psql -qX "$BENCH_PG/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    "$ontab" migrate >&2
    business=$("$ontab" businesses create --name Bench)
    business_id=$(jq -r .id <<<"$business")
    api_key=$(jq -r .api_key.key <<<"$business")
    [ -n "$business_id" ] && [ "$business_id" != null ] || die "no business id in: $business"

    step "loading one customer with $((2 * PAIRS)) ledger entries, $SPACING apart (bench/load_long_ledger.sql)"
    started=$(date +%s.%N)
    psql -qX -v ON_ERROR_STOP=1 -v business="$business_id" -v pairs="$PAIRS" -v spacing="$SPACING" \
        "$DATABASE_URL" -f bench/load_long_ledger.sql >/dev/null
    echo "  loaded in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s" >&2
    # Written with triggers off: every invariant they hold, re-checked.
    step "ontab audit --business $business_id"
    started=$(date +%s.%N)
    "$ontab" audit --business "$business_id" >"$work/audit.txt" 2>&1 || { cat "$work/audit.txt" >&2; die "the loaded history fails the audit"; }
    echo "  $(tail -1 "$work/audit.txt") in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s" >&2
    printf 'business_id=%s\napi_key=%s\n' "$business_id" "$api_key" >"$state"
fi
if [ "${LOAD_ONLY:-0}" = 1 ]; then
    echo "loaded; measure with REUSE=1 $0" >&2
    exit 0
fi
customer=$(psql -qtAX "$DATABASE_URL" -c "SELECT md5('$business_id' || ':long:customer')::uuid")
read -r entries newest < <(psql -qtAX -F ' ' "$DATABASE_URL" -c \
    "SELECT count(*), to_char(max(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
       FROM credit_ledger WHERE customer_id = '$customer'")
echo "  customer $customer: $entries entries, the newest at $newest" >&2

step "ontab serve on 127.0.0.1:$BENCH_PORT"
ONTAB_LISTEN=127.0.0.1:$BENCH_PORT RUST_LOG=warn "$ontab" serve >"$work/serve.log" 2>&1 &
server_pid=$!
base=http://127.0.0.1:$BENCH_PORT
wait_ready "$base" "$server_pid" "$work/serve.log" 20 || die "ontab did not become ready"
auth="Authorization: Bearer $api_key"
empty=$(curl -sf -X POST "$base/v1/customers" -H "$auth" -H 'Content-Type: application/json' \
    -d '{"name":"No history","credit_limit":0}' | jq -r .id)
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }

# The last month of the history: [newest - 30 days, newest + 1 s).
from=$(date -u -d "$newest - 30 days" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "$newest + 1 second" +%Y-%m-%dT%H:%M:%SZ)
period="from=$from&to=$to"

# n timed GETs of $1; prints sorted milliseconds, one a line.
timed() {
    local url=$1 n=$2 out=$work/times.$RANDOM
    for _ in $(seq "$n"); do
        read -r status seconds < <(curl -s -o "$work/body" -w '%{http_code} %{time_total}\n' -H "$auth" "$url")
        [ "$status" = 200 ] || { cat "$work/body" >&2; die "GET $url answered $status"; }
        awk -v s="$seconds" 'BEGIN { printf "%.2f\n", s * 1000 }' >>"$out"
    done
    sort -n "$out"
}
summary() { awk '{ t[NR] = $1 } END { printf "p50 %s ms, p90 %s ms, max %s ms", t[int((NR + 1) / 2)], t[int(NR * 0.9 + 0.5)], t[NR] }'; }
p50() { awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'; }

step "warm-up, then 51 x each statement, interleaved by rounds of 3"
timed "$base/v1/customers/$customer/statement?$period" 3 >/dev/null
timed "$base/v1/customers/$empty/statement?$period" 3 >/dev/null
: >"$work/long"; : >"$work/short"
for _ in $(seq 17); do
    timed "$base/v1/customers/$customer/statement?$period" 3 >>"$work/long"
    timed "$base/v1/customers/$empty/statement?$period" 3 >>"$work/short"
done
curl -s -H "$auth" "$base/v1/customers/$customer/statement?$period" >"$work/statement.json"
in_period=$(psql -qtAX "$DATABASE_URL" -c \
    "SELECT count(*) FROM credit_ledger WHERE customer_id = '$customer' AND created_at >= '$from' AND created_at < '$to'")
long=$(sort -n "$work/long" | summary)
short=$(sort -n "$work/short" | summary)
ratio=$(awk -v a="$(sort -n "$work/long" | p50)" -v b="$(sort -n "$work/short" | p50)" 'BEGIN { printf "%.2f", a / b }')
opening=$(jq .opening_balance "$work/statement.json")
page=$(jq '.entries | length' "$work/statement.json")

step "the whole history as CSV, VmRSS sampled every 50 ms"
sample() {
    while kill -0 "$server_pid" 2>/dev/null; do rss >>"$1"; sleep 0.05; done
}
idle=$(rss)
sample "$work/rss.fast" &
sampler_pid=$!
read -r status bytes seconds < <(curl -s -o "$work/history.csv" -w '%{http_code} %{size_download} %{time_total}\n' \
    -H "$auth" -H 'Accept: text/csv' "$base/v1/customers/$customer/statement?from=0001-01-01T00:00:00Z&to=9999-01-01T00:00:00Z")
kill "$sampler_pid"; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""
[ "$status" = 200 ] || { head -c 500 "$work/history.csv" >&2; die "the CSV export answered $status"; }
rows=$(($(wc -l <"$work/history.csv") - 1))
peak=$(sort -n "$work/rss.fast" | tail -1)
after=$(rss)
samples=$(wc -l <"$work/rss.fast")

step "the same, read at 2 MB/s for 10 s (a slow client)"
sample "$work/rss.slow" &
sampler_pid=$!
curl -s -o /dev/null --limit-rate 2M --max-time 10 -H "$auth" -H 'Accept: text/csv' \
    "$base/v1/customers/$customer/statement?from=0001-01-01T00:00:00Z&to=9999-01-01T00:00:00Z" || true
kill "$sampler_pid"; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""
slow_peak=$(sort -n "$work/rss.slow" | tail -1)

cat <<EOF

## Statement benchmark ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))

One customer, $entries ledger entries ($SPACING apart, newest $newest).

| measurement | result |
|---|---|
| JSON statement, last month ($from .. $to: $in_period entries, first page of $page; opening balance $opening), 51 requests | $long |
| same run, customer with no entries (baseline), 51 requests | $short |
| ratio of the p50s | ${ratio}× |
| CSV of the whole history | $rows rows, $bytes bytes in $seconds s |
| server VmRSS: idle before / peak during ($samples samples) / after | $((idle / 1024)) MiB / $((peak / 1024)) MiB / $((after / 1024)) MiB |
| server VmRSS peak, CSV read at 2 MB/s for 10 s | $((slow_peak / 1024)) MiB |
EOF
[ "$rows" = "$entries" ] || die "the CSV held $rows rows, the ledger $entries"
