#!/usr/bin/env bash
# The overdue-report benchmark: one business with 10,000 customers and
# 1,000,000 ledger entries (bench/load_history.sql), then 11 timed
# GET /v1/reports/overdue?days=30 and 11 without days (by due_at); prints
# min / median / max of each.
#
#   bench/report.sh
#
# Environment: BENCH_PG [postgres://postgres@127.0.0.1:5432] (a throwaway
# cluster is started when nothing answers), BENCH_PORT [18091],
# CUSTOMERS [10000] and PAIRS [50] (entries = 2 x CUSTOMERS x PAIRS).
# The load takes minutes (every row through the guards): LOAD_ONLY=1 stops
# after it, REUSE=1 measures the database a previous run loaded (its
# business and key are kept in target/bench-*.env); ONTAB_BIN=path uses
# that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BENCH_PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
BENCH_PORT=${BENCH_PORT:-18091}
CUSTOMERS=${CUSTOMERS:-10000}
PAIRS=${PAIRS:-50}
db=ontab_bench_report
step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench/report.sh: %s\n' "$*" >&2; exit 2; }

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
state=${CARGO_TARGET_DIR:-target}/bench-report.env

work=$(mktemp -d /tmp/ontab-report.XXXXXX)
server_pid=""
cluster=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    if [ -n "$cluster" ]; then as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$cluster"; fi
    rm -rf "$work"
}
trap cleanup EXIT

if ! "$pg_bin/pg_isready" -q -d "$BENCH_PG/postgres"; then
    step "no PostgreSQL at $BENCH_PG: starting a throwaway cluster"
    # Not under $work: mktemp makes that root-only, and the cluster runs as postgres.
    cluster=$(mktemp -d /tmp/ontab-report-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$cluster"
    as_pg "$pg_bin/initdb" -D "$cluster/data" -U postgres --auth=trust >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p 55440 -k $cluster" start >/dev/null
    BENCH_PG=postgres://postgres@127.0.0.1:55440
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

    step "loading $CUSTOMERS customers x $((2 * PAIRS)) ledger entries (bench/load_history.sql)"
    started=$(date +%s.%N)
    psql -qX -v ON_ERROR_STOP=1 -v business="$business_id" -v customers="$CUSTOMERS" -v pairs="$PAIRS" \
        "$DATABASE_URL" -f bench/load_history.sql >/dev/null
    echo "  loaded in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s" >&2
    printf 'business_id=%s\napi_key=%s\n' "$business_id" "$api_key" >"$state"
fi
if [ "${LOAD_ONLY:-0}" = 1 ]; then
    echo "loaded; measure with REUSE=1 $0" >&2
    exit 0
fi

step "ontab serve on 127.0.0.1:$BENCH_PORT"
ONTAB_LISTEN=127.0.0.1:$BENCH_PORT RUST_LOG=warn "$ontab" serve >"$work/serve.log" 2>&1 &
server_pid=$!
wait_ready "http://127.0.0.1:$BENCH_PORT" "$server_pid" "$work/serve.log" 20 || die "ontab did not become ready"

# 11 timed GETs of /v1/reports/overdue$1; prints min / median / max.
report() {
    local query=$1 times=$work/times$RANDOM
    step "11 x GET /v1/reports/overdue$query"
    url="http://127.0.0.1:$BENCH_PORT/v1/reports/overdue$query"
    for n in $(seq 11); do
        # %{http_code} and %{time_total} (seconds) of one request; the body is discarded.
        read -r status seconds < <(curl -s -o "$work/report.json" -w '%{http_code} %{time_total}\n' \
            -H "Authorization: Bearer $api_key" "$url")
        [ "$status" = 200 ] || { cat "$work/report.json" >&2; die "GET $url answered $status"; }
        awk -v s="$seconds" 'BEGIN { printf "%.1f\n", s * 1000 }' >>"$times"
        echo "  request $n: $(tail -1 "$times") ms" >&2
    done
    listed=$(jq '.customers | length' "$work/report.json")
    sort -n "$times" | awk -v listed="$listed" -v entries="$((2 * CUSTOMERS * PAIRS))" -v query="$query" '
        { t[NR] = $1 }
        END { printf "overdue report%s over %d ledger entries (%d customers listed): min %s ms, median %s ms, max %s ms (11 requests)\n",
                     query, entries, listed, t[1], t[6], t[11] }'
}
# ?days=30 as measured before due dates existed; without days (by each
# purchase's due_at, 30 days of terms here) as the report now defaults.
report "?days=30"
report ""
