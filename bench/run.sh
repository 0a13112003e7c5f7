#!/usr/bin/env bash
# One command for every row of the benchmark table (docs/benchmarks.md):
#
#   bench/run.sh                      # every scenario and its baselines
#   bench/run.sh hot-product sellout  # a subset (names as in ontab-load)
#
# Builds ontab and ontab-load (release), creates fresh databases on the
# PostgreSQL at BENCH_PG (or starts a throwaway cluster when none answers),
# starts `ontab serve`, runs each scenario with CLIENTS clients for DURATION,
# runs the baselines against the same PostgreSQL with the same client count,
# samples the server's memory from /proc, and writes
# bench/results/<timestamp>.md (also printed). Exits non-zero when any
# scenario's invariant audit fails or a target is missed.
#
# Environment (defaults in brackets):
#   BENCH_PG        [postgres://postgres@127.0.0.1:5432] superuser URL, no database
#   CLIENTS         [64]   concurrent clients for ontab and for pgbench
#   DURATION        [20s]  measured time per scenario and per baseline
#   WARMUP          [2s]   load before the measured time (ontab-load only)
#   CUSTOMERS       [1000] / PRODUCTS [1000]   uncontended and mixed sizes
#   HISTORY_ENTRIES [1000000] ledger entries bulk-loaded for `history`
#   TPCB_SCALE      [10]   pgbench -i scale for the TPC-B-like baseline
#   BENCH_PORT      [18090] where ontab listens
#   POOL_SIZE       [16]   ontab's database pool (ONTAB_DB_POOL_SIZE)
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
CUSTOMERS=${CUSTOMERS:-1000}
PRODUCTS=${PRODUCTS:-1000}
HISTORY_ENTRIES=${HISTORY_ENTRIES:-1000000}
TPCB_SCALE=${TPCB_SCALE:-10}
BENCH_PORT=${BENCH_PORT:-18090}
POOL_SIZE=${POOL_SIZE:-16}
ALL_SCENARIOS=(uncontended hot-product sellout hot-customer mixed history)

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 2; }

# pgbench -T takes whole seconds; ontab-load takes the same value with a unit.
seconds=${DURATION%s}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || die "DURATION must be whole seconds, like 20s (got $DURATION)"
[[ $CLIENTS =~ ^[0-9]+$ && $CLIENTS -gt 0 ]] || die "CLIENTS must be a positive integer"

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=("${ALL_SCENARIOS[@]}")
for s in "${scenarios[@]}"; do
    [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario '$s' (one of: ${ALL_SCENARIOS[*]})"
done
wants() { [[ " ${scenarios[*]} " == *" $1 "* ]]; }

# --- tools -------------------------------------------------------------------
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
missing=()
[ -n "$pg_bin" ] && [ -x "$pg_bin/pgbench" ] && [ -x "$pg_bin/initdb" ] || missing+=(postgresql postgresql-contrib)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "need ${missing[*]}: install them or run as root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
pgbench=$pg_bin/pgbench

step "building ontab and ontab-load (release)"
cargo build --release --locked -p ontab -p ontab-load >&2
target_dir=${CARGO_TARGET_DIR:-target}
ontab=$target_dir/release/ontab
load=$target_dir/release/ontab-load

work=$(mktemp -d /tmp/ontab-bench.XXXXXX)
server_pid=""
cluster=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    if [ -n "$cluster" ]; then
        as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$cluster"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- PostgreSQL ----------------------------------------------------------------
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if ! "$pg_bin/pg_isready" -q -d "$BENCH_PG/postgres"; then
    step "no PostgreSQL at $BENCH_PG: starting a throwaway cluster"
    # Not under $work: mktemp makes that root-only, and the cluster runs as postgres.
    cluster=$(mktemp -d /tmp/ontab-bench-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$cluster"
    as_pg "$pg_bin/initdb" -D "$cluster/data" -U postgres --auth=trust >/dev/null
    # Enough connections for CLIENTS pgbench clients plus ontab's pool.
    as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p 55439 -k $cluster -c max_connections=$((CLIENTS + 50))" start >/dev/null
    BENCH_PG=postgres://postgres@127.0.0.1:55439
fi
pg_version=$(psql -qtAX "$BENCH_PG/postgres" -c 'SHOW server_version')
fresh_db() {
    psql -qX "$BENCH_PG/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null 2>&1 ||
        die "cannot create database $1 on $BENCH_PG"
}

# --- ontab ---------------------------------------------------------------------
step "starting ontab serve on 127.0.0.1:$BENCH_PORT (fresh database ontab_bench)"
fresh_db ontab_bench
ONTAB_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ONTAB_ADMIN_TOKEN
DATABASE_URL=$BENCH_PG/ontab_bench ONTAB_LISTEN=127.0.0.1:$BENCH_PORT ONTAB_DB_POOL_SIZE=$POOL_SIZE \
    RUST_LOG=warn "$ontab" serve >"$work/serve.log" 2>&1 &
server_pid=$!

# Peak resident memory of the server while a scenario runs, in KiB.
sample_rss() {
    local max=0 kb
    while kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null) && [ -n "$kb" ]; do
        # Write-then-rename: the sampler is killed at any moment, and a
        # truncated file would lose the peak.
        if [ "$kb" -gt "$max" ]; then max=$kb; echo "$max" >"$1.new" && mv -f "$1.new" "$1"; fi
        sleep 0.1
    done
}

# --- scenarios -------------------------------------------------------------------
failed=0
run_scenario() { # name ontab-load-scenario [args...]
    local name=$1 scenario=$2; shift 2
    step "ontab-load --scenario $scenario $* ($CLIENTS clients, $DURATION)"
    sample_rss "$work/rss.$name" & local sampler=$!
    local rc=0
    "$load" --scenario "$scenario" --base-url "http://127.0.0.1:$BENCH_PORT" --clients "$CLIENTS" \
        --duration "$DURATION" --warmup "$WARMUP" --wait-ready 60s --json "$@" \
        >"$work/$name.json" 2>"$work/$name.err" || rc=$?
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    cat "$work/$name.err" >&2
    if [ "$rc" -ne 0 ] || ! jq -e .ok "$work/$name.json" >/dev/null 2>&1; then
        echo "AUDIT FAILED or error in $name (exit $rc):" >&2
        jq -r '.violations[]? | "  VIOLATION: " + .' "$work/$name.json" >&2 2>/dev/null || true
        failed=1
    fi
    jq -r '"  \(.per_s) responses/s; outcomes: \(.outcomes | tostring)"' "$work/$name.json" >&2 2>/dev/null || true
}
wants uncontended && run_scenario uncontended uncontended --customers "$CUSTOMERS" --products "$PRODUCTS"
wants hot-product && run_scenario hot-product hot-product
wants sellout && run_scenario sellout sellout
wants hot-customer && run_scenario hot-customer hot-customer
# The same customer with a limit the run cannot reach: every purchase is
# accepted, so this is the rate of purchases on one customer's ledger.
wants hot-customer && run_scenario hot-customer-accepted hot-customer --credit-limit 100000000000000
wants mixed && run_scenario mixed mixed --customers "$CUSTOMERS" --products "$PRODUCTS"
# Last: its million-entry ledger stays in the database.
wants history && run_scenario history history --history-entries "$HISTORY_ENTRIES" --database-url "$BENCH_PG/ontab_bench"

hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null || echo 0)
kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true
server_pid=""

# The second opinion: every invariant of everything the scenarios stored,
# re-checked from the database by `ontab audit`.
step "ontab audit of ontab_bench"
if DATABASE_URL=$BENCH_PG/ontab_bench "$ontab" audit >"$work/audit.txt" 2>&1; then
    tail -1 "$work/audit.txt" >&2
else
    cat "$work/audit.txt" >&2
    echo "ontab audit FAILED" >&2
    failed=1
fi

# --- baselines -------------------------------------------------------------------
# Latency percentiles from pgbench's per-transaction log (3rd column, µs).
pgbench_run() { # name database script-args...
    local name=$1 db=$2; shift 2
    step "pgbench baseline $name ($CLIENTS clients, ${seconds}s)"
    rm -f "$work/$name".log*
    "$pgbench" -n -M prepared -c "$CLIENTS" -j "$((CLIENTS < 2 ? CLIENTS : 2))" -T "$seconds" --log --log-prefix="$work/$name.log" \
        "$@" "$BENCH_PG/$db" >"$work/$name.out" 2>&1 || { cat "$work/$name.out" >&2; die "pgbench $name failed"; }
    local tps
    tps=$(awk '/^tps = / { print $3; exit }' "$work/$name.out")
    cat "$work/$name".log* | awk '{ print $3 }' | sort -n >"$work/$name.lat"
    awk -v tps="$tps" '{ v[NR] = $1 } END {
        p50 = v[int(NR * 0.50) + 1]; p99 = v[int(NR * 0.99) + 1]
        printf "%.1f %.2f %.2f\n", tps, p50 / 1000, p99 / 1000 }' "$work/$name.lat" >"$work/$name.result"
    echo "  $(cat "$work/$name.result") (tps p50_ms p99_ms)" >&2
}
if wants uncontended; then
    fresh_db ontab_bench_tpcb
    "$pgbench" -i -q -s "$TPCB_SCALE" "$BENCH_PG/ontab_bench_tpcb" >"$work/tpcb-init.out" 2>&1 ||
        { cat "$work/tpcb-init.out" >&2; die "pgbench -i failed"; }
    pgbench_run tpcb ontab_bench_tpcb
fi
naive_run() { # name script
    fresh_db ontab_bench_naive
    PGOPTIONS='-c client_min_messages=warning' \
        psql -qX -v ON_ERROR_STOP=1 "$BENCH_PG/ontab_bench_naive" -f bench/pgbench/naive_schema.sql >/dev/null
    pgbench_run "$1" ontab_bench_naive -f "$2"
}
wants uncontended && naive_run naive_uncontended bench/pgbench/naive_uncontended.sql
wants hot-product && naive_run naive_hot_product bench/pgbench/naive_hot_product.sql

# --- the table -------------------------------------------------------------------
# ontab numbers of one scenario: "tps p50 p99" of its main operation.
ontab_numbers() { # scenario op
    jq -r --arg op "$2" '"\(.per_s) \(.ops[$op].latency_ms.p50) \(.ops[$op].latency_ms.p99)"' "$work/$1.json" 2>/dev/null ||
        echo "- - -"
}
audit_ok() { jq -e .ok "$work/$1.json" >/dev/null 2>&1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f×", a / b; else print "-" }'; }
at_least() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { exit !(b + 0 > 0 && a / b >= t) }'; }
at_most() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { exit !(b + 0 > 0 && a / b <= t) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Runs in $(...), a subshell: a miss is remembered in a file, not a variable.
verdict() { # condition-exit-status scenario
    if ! audit_ok "$2"; then echo "**NO: audit failed**"; touch "$work/missed"
    elif [ "$1" = 0 ]; then echo "yes"
    else echo "**no**"; touch "$work/missed"; fi
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
out=bench/results/$stamp.md
{
    echo "# ontab benchmark, $stamp"
    echo
    echo "$CLIENTS clients, $DURATION per run (+$WARMUP warm-up for ontab), PostgreSQL $pg_version," \
        "$(nproc) CPUs, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')."
    echo "Reproduce: \`CLIENTS=$CLIENTS DURATION=$DURATION bench/run.sh ${scenarios[*]}\`"
    echo
    echo "| scenario | tps | p50 ms | p99 ms | baseline | baseline | ratio | target | met? |"
    echo "|---|---:|---:|---:|---|---:|---:|---|---|"
    if wants uncontended; then
        read -r tps p50 p99 < <(ontab_numbers uncontended purchase)
        read -r btps bp50 bp99 <"$work/tpcb.result"
        met=0; at_least "$tps" "$btps" 1.0 || met=1
        echo "| uncontended | $tps | $p50 | $p99 | pgbench TPC-B-like, -M prepared | $btps tps | $(ratio "$tps" "$btps") | ≥ 1.0× | $(verdict $met uncontended) |"
        read -r ntps np50 np99 <"$work/naive_uncontended.result"
        echo "| uncontended | $tps | $p50 | $p99 | original flow, uncontended | $ntps tps | $(ratio "$tps" "$ntps") | (information) | $(verdict 0 uncontended) |"
    fi
    if wants hot-product; then
        read -r tps p50 p99 < <(ontab_numbers hot-product purchase)
        read -r ntps np50 np99 <"$work/naive_hot_product.result"
        met=0; at_least "$tps" "$ntps" 20 || met=1
        echo "| hot-product | $tps | $p50 | $p99 | original flow, hot product | $ntps tps | $(ratio "$tps" "$ntps") | ≥ 20×, no oversell | $(verdict $met hot-product) |"
    fi
    if wants sellout; then
        read -r tps p50 p99 < <(ontab_numbers sellout purchase)
        sold=$(jq -r '"\(.facts.stock_sold_by_201s) of \(.facts.stock_initial) sold, \(.facts.stock_final) left"' "$work/sellout.json" 2>/dev/null || echo "-")
        echo "| hot-product, stock runs out | $tps | $p50 | $p99 | audit | $sold | - | no oversell, rest insufficient_stock | $(verdict 0 sellout) |"
    fi
    if wants hot-customer; then
        read -r tps p50 p99 < <(ontab_numbers hot-customer purchase)
        bal=$(jq -r '"balance \(.facts.customer_last_balance) of limit \(.facts.credit_limit)"' "$work/hot-customer.json" 2>/dev/null || echo "-")
        echo "| hot-customer | $tps | $p50 | $p99 | audit | $bal | - | never above the limit | $(verdict 0 hot-customer) |"
    fi
    if wants hot-customer; then
        read -r tps p50 p99 < <(ontab_numbers hot-customer-accepted purchase)
        refused=$(jq -r '[.outcomes | to_entries[] | select(.key != "201") | .value] | add // 0' "$work/hot-customer-accepted.json" 2>/dev/null || echo "?")
        echo "| hot-customer, limit out of reach | $tps | $p50 | $p99 | audit | $refused refused | - | every purchase accepted, chain intact | $(verdict 0 hot-customer-accepted) |"
    fi
    if wants mixed; then
        read -r tps p50 p99 < <(ontab_numbers mixed purchase)
        echo "| mixed (10 tenants; purchase latency) | $tps | $p50 | $p99 | audit | - | - | all invariants | $(verdict 0 mixed) |"
    fi
    if wants history; then
        read -r tps p50 p99 < <(ontab_numbers history purchase_long_ledger)
        e50=$(jq -r '.ops.purchase_empty_ledger.latency_ms.p50' "$work/history.json" 2>/dev/null || echo 0)
        met=0; at_most "$p50" "$e50" 1.1 || met=1
        echo "| history ($HISTORY_ENTRIES entries; p50 vs empty ledger) | $tps | $p50 | $p99 | same run, empty ledger | p50 $e50 ms | $(ratio "$p50" "$e50") | ≤ 1.1× | $(verdict $met history) |"
    fi
    peak=0
    for f in "$work"/rss.*; do
        kb=$(cat "$f" 2>/dev/null || true)
        [ "${kb:-0}" -gt "$peak" ] && peak=$kb
    done
    [ "${hwm_kb:-0}" -le $((64 * 1024)) ] && [ "$peak" -le $((64 * 1024)) ] && mem=yes || { mem="**no**"; failed=1; }
    echo "| server memory | peak VmRSS $(mib "$peak") MiB | | | VmHWM (whole run) | $(mib "${hwm_kb:-0}") MiB | - | ≤ 64 MiB | $mem |"
    echo
    echo "Baselines alone (same PostgreSQL, same client count, \`pgbench -M prepared -j 2\`):"
    echo
    echo "| baseline | tps | p50 ms | p99 ms |"
    echo "|---|---:|---:|---:|"
    for b in tpcb naive_uncontended naive_hot_product; do
        [ -f "$work/$b.result" ] || continue
        read -r btps bp50 bp99 <"$work/$b.result"
        echo "| $b | $btps | $bp50 | $bp99 |"
    done
    echo
    echo "Peak server VmRSS per scenario (MiB):" \
        "$(for f in "$work"/rss.*; do [[ $f != *.new ]] && printf '%s %s; ' "${f##*/rss.}" "$(mib "$(cat "$f")")"; done)"
    echo
    echo "Outcomes per scenario:"
    echo
    for s in "${scenarios[@]}" hot-customer-accepted; do
        [ -f "$work/$s.json" ] && jq -r --arg s "$s" '"- \($s): " + (.outcomes | to_entries | map("\(.key) × \(.value)") | join(", ")) + (if .ok then "" else "; **VIOLATIONS**: " + (.violations | join("; ")) end)' "$work/$s.json" 2>/dev/null
    done
} >"$out"
# Keep the raw JSON next to the table for anyone checking a number.
mkdir -p "bench/results/$stamp"
cp "$work"/*.json "$work"/*.out "bench/results/$stamp/" 2>/dev/null || true
cat "$out"
[ -e "$work/missed" ] && failed=1
echo >&2
echo "written: $out" >&2
exit "$failed"
