#!/usr/bin/env bash
# One command for every row of the benchmark table (docs/benchmarks.md):
#
#   bench/run.sh                      # every scenario and its baselines
#   bench/run.sh hot-product sellout  # a subset (names as in ontab-load)
#   bench/run.sh hot-product-held     # a row and the rows it is compared with
#   bench/run.sh uncontended-webhook hot-product-webhook   # events delivered by webhook
#
# Builds ontab and ontab-load (release), creates fresh databases on the
# PostgreSQL at BENCH_PG (or starts a throwaway cluster when none answers,
# or with OWN_CLUSTER=1), starts `ontab serve`, and for each client count of
# CLIENTS, ROUNDS times, runs every selected scenario for DURATION and then
# the baselines against the same PostgreSQL with the same client count (the
# rounds alternate scenarios and baselines, so a noisy minute hits all of
# them alike). It measures the CPU time of the server and of the whole
# PostgreSQL cluster over each measured window from /proc, samples the
# server's memory, and writes bench/results/<timestamp>.md (also printed)
# with the median of the rounds and each ratio to a baseline of the same
# round. Exits non-zero when any scenario's invariant audit fails or a
# target is missed.
#
# Environment (defaults in brackets):
#   BENCH_PG        [postgres://postgres@127.0.0.1:5432] superuser URL, no database
#   OWN_CLUSTER     [0]    1: always start a throwaway cluster, so the CPU
#                          measured for PostgreSQL is the benchmark's alone
#   CLIENTS         [16 64] client counts, for ontab and for pgbench
#   ROUNDS          [1]    rounds per client count; the table gives medians
#   DURATION        [20s]  measured time per scenario and per baseline
#   WARMUP          [2s]   load before the measured time (ontab-load only)
#   STATEMENTS      [0]    1: pg_stat_statements (track = all) per scenario:
#                          the statements' time per accepted purchase,
#                          written beside the table (needs the library in
#                          shared_preload_libraries; a throwaway cluster
#                          loads it)
#   CUSTOMERS       [1000] / PRODUCTS [1000]   uncontended and mixed sizes
#   PENDING_HOLDS   [1000] pending holds on the product in hot-product-held
#   HISTORY_ENTRIES [1000000] ledger entries bulk-loaded for `history`
#   TPCB_SCALE      [10]   pgbench -i scale for the TPC-B-like baseline
#   PG_OPTS         []     more server options for the throwaway cluster,
#                          e.g. "-c session_preload_libraries=auto_explain
#                          -c auto_explain.log_min_duration=5ms"
#   PG_LOG          []     copy the throwaway cluster's log there at the end
#   BENCH_PORT      [18090] where ontab listens
#   POOL_SIZE       [16]   ontab's database pool (ONTAB_DB_POOL_SIZE)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BENCH_PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
OWN_CLUSTER=${OWN_CLUSTER:-0}
CLIENTS=${CLIENTS:-16 64}
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
STATEMENTS=${STATEMENTS:-0}
CUSTOMERS=${CUSTOMERS:-1000}
PRODUCTS=${PRODUCTS:-1000}
PENDING_HOLDS=${PENDING_HOLDS:-1000}
HISTORY_ENTRIES=${HISTORY_ENTRIES:-1000000}
TPCB_SCALE=${TPCB_SCALE:-10}
BENCH_PORT=${BENCH_PORT:-18090}
POOL_SIZE=${POOL_SIZE:-16}
PG_OPTS=${PG_OPTS:-}
PG_LOG=${PG_LOG:-}
ALL_SCENARIOS=(uncontended uncontended-webhook hold-capture hot-product hot-product-webhook hold-capture-hot hot-product-held sellout hot-customer mixed history)

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 2; }

# pgbench -T takes whole seconds; ontab-load takes the same value with a unit.
seconds=${DURATION%s}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || die "DURATION must be whole seconds, like 20s (got $DURATION)"
read -r -a client_counts <<<"$CLIENTS"
[ ${#client_counts[@]} -gt 0 ] || die "CLIENTS must list at least one client count"
max_clients=0
for c in "${client_counts[@]}"; do
    [[ $c =~ ^[0-9]+$ && $c -gt 0 ]] || die "CLIENTS must be positive integers (got '$c')"
    [ "$c" -gt "$max_clients" ] && max_clients=$c
done
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || die "ROUNDS must be a positive integer"

selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${ALL_SCENARIOS[@]}")
for s in "${selected[@]}"; do
    [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario '$s' (one of: ${ALL_SCENARIOS[*]})"
done
# A row compared with another scenario runs that one too, in the same
# rounds: hold-capture and uncontended-webhook with uncontended, the hot
# variants with hot-product.
scenarios=()
for s in "${ALL_SCENARIOS[@]}"; do
    need=0
    [[ " ${selected[*]} " == *" $s "* ]] && need=1
    [ "$s" = uncontended ] && [[ " ${selected[*]} " == *" hold-capture "* || " ${selected[*]} " == *" uncontended-webhook "* ]] && need=1
    [ "$s" = hot-product ] && [[ " ${selected[*]} " == *" hold-capture-hot "* || " ${selected[*]} " == *" hot-product-held "* || " ${selected[*]} " == *" hot-product-webhook "* ]] && need=1
    [ "$need" = 1 ] && scenarios+=("$s")
done
wants() { [[ " ${scenarios[*]} " == *" $1 "* ]]; }
# Baselines only for the rows asked for by name.
asked() { [[ " ${selected[*]} " == *" $1 "* ]]; }

# --- tools -------------------------------------------------------------------
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
missing=()
[ -n "$pg_bin" ] && [ -x "$pg_bin/pgbench" ] && [ -x "$pg_bin/initdb" ] || missing+=(postgresql postgresql-contrib)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
command -v wrk >/dev/null || missing+=(wrk)
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
        as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -m fast stop >/dev/null 2>&1 || true
        [ -n "$PG_LOG" ] && cp "$cluster/log" "$PG_LOG" 2>/dev/null
        rm -rf "$cluster"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- PostgreSQL ----------------------------------------------------------------
if [ "$OWN_CLUSTER" = 1 ] || ! "$pg_bin/pg_isready" -q -d "$BENCH_PG/postgres"; then
    step "starting a throwaway PostgreSQL cluster (OWN_CLUSTER=$OWN_CLUSTER)"
    # Not under $work: mktemp makes that root-only, and the cluster runs as postgres.
    cluster=$(mktemp -d /tmp/ontab-bench-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$cluster"
    as_pg "$pg_bin/initdb" -D "$cluster/data" -U postgres --auth=trust >/dev/null
    # Enough connections for the most pgbench clients plus ontab's pool;
    # pg_stat_statements only in this cluster, and only when asked for.
    pgss_opts=""
    [ "$STATEMENTS" = 1 ] && pgss_opts="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c pg_stat_statements.track_planning=on"
    as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p 55439 -k $cluster -c max_connections=$((max_clients + 50)) $pgss_opts $PG_OPTS" start >/dev/null
    BENCH_PG=postgres://postgres@127.0.0.1:55439
fi
pg_version=$(psql -qtAX "$BENCH_PG/postgres" -c 'SHOW server_version')
# The cluster's postmaster: its CPU and its children's (every backend and
# background process of the cluster) is what PostgreSQL costs. On a shared
# cluster that includes everyone else's work too: use OWN_CLUSTER=1.
postmaster_pid=$(head -1 "$(psql -qtAX "$BENCH_PG/postgres" -c 'SHOW data_directory')/postmaster.pid" 2>/dev/null || true)
[[ $postmaster_pid =~ ^[0-9]+$ ]] || { postmaster_pid=""; echo "bench/run.sh: cannot read the postmaster's pid: no PostgreSQL CPU figures" >&2; }
fresh_db() {
    psql -qX "$BENCH_PG/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null 2>&1 ||
        die "cannot create database $1 on $BENCH_PG"
}

# --- ontab ---------------------------------------------------------------------
step "starting ontab serve on 127.0.0.1:$BENCH_PORT (fresh database ontab_bench)"
fresh_db ontab_bench
if [ "$STATEMENTS" = 1 ]; then
    [[ $(psql -qtAX "$BENCH_PG/postgres" -c 'SHOW shared_preload_libraries') == *pg_stat_statements* ]] ||
        die "STATEMENTS=1 needs pg_stat_statements in shared_preload_libraries (OWN_CLUSTER=1 does that)"
    psql -qX "$BENCH_PG/ontab_bench" -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null
fi
ONTAB_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ONTAB_ADMIN_TOKEN
# Private webhook addresses allowed: the *-webhook rows deliver to
# ontab-load's own receiver on 127.0.0.1, the only endpoint the benchmark
# ever creates.
DATABASE_URL=$BENCH_PG/ontab_bench ONTAB_LISTEN=127.0.0.1:$BENCH_PORT ONTAB_DB_POOL_SIZE=$POOL_SIZE \
    ONTAB_WEBHOOK_ALLOW_PRIVATE=true RUST_LOG=warn "$ontab" serve >"$work/serve.log" 2>&1 &
server_pid=$!
# Ready (migrated) before anything else touches ontab_bench: a run of
# `history` alone audits the database before its first scenario.
wait_ready "http://127.0.0.1:$BENCH_PORT" "$server_pid" "$work/serve.log" 60 || die "ontab did not become ready"
clock_ticks=$(getconf CLK_TCK 2>/dev/null || echo 100)

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
# One line per scenario run in $work/runs.tsv:
#   name clients round rate p50 p99 server_us pg_us client_us ok
# rate: responses/s, but accepted sales (captures) per second for the
# hold-capture rows; p50/p99 of the main operation; CPU in µs per accepted
# purchase (captures are purchases) over the measured window.
main_op() {
    case $1 in
        hold-capture*) echo capture ;;
        history) echo purchase_long_ledger ;;
        *) echo purchase ;;
    esac
}
run_scenario() { # name clients round ontab-load-scenario [args...]
    local name=$1 c=$2 r=$3 scenario=$4; shift 4
    local tag=$name.c$c.r$r
    step "ontab-load --scenario $scenario $* ($c clients, $DURATION, round $r)"
    [ "$STATEMENTS" = 1 ] && psql -qtAX "$BENCH_PG/ontab_bench" -c 'SELECT pg_stat_statements_reset()' >/dev/null
    sample_rss "$work/rss.$tag" & local sampler=$!
    local rc=0 probes=(--cpu-pid "server=$server_pid")
    [ -n "$postmaster_pid" ] && probes+=(--cpu-tree "postgres=$postmaster_pid")
    "$load" --scenario "$scenario" --base-url "http://127.0.0.1:$BENCH_PORT" --clients "$c" \
        --duration "$DURATION" --warmup "$WARMUP" --wait-ready 60s --json \
        "${probes[@]}" --clock-ticks "$clock_ticks" "$@" \
        >"$work/$tag.json" 2>"$work/$tag.err" || rc=$?
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    cat "$work/$tag.err" >&2
    if [ "$rc" -ne 0 ] || ! jq -e .ok "$work/$tag.json" >/dev/null 2>&1; then
        echo "AUDIT FAILED or error in $name (exit $rc):" >&2
        jq -r '.violations[]? | "  VIOLATION: " + .' "$work/$tag.json" >&2 2>/dev/null || true
        failed=1
    fi
    if [ "$STATEMENTS" = 1 ]; then
        # Every statement of the run (setup too: its statements are others),
        # in µs per accepted purchase of the whole run (warm-up included, as
        # the statistics are).
        local sales
        # Every 201 is a purchase, but a hold-capture sale is two 201s.
        sales=$(jq -r --arg name "$name" '[.outcomes | to_entries[] | select(.key == "201") | .value] | add // 0
            | if ($name | startswith("hold-capture")) then (. / 2 | floor) else . end' "$work/$tag.json")
        psql -qtAX -F $'\t' "$BENCH_PG/ontab_bench" -v sales="$sales" >"$work/$tag.pgss" 2>/dev/null <<'SQL' || true
SELECT round(((total_exec_time + total_plan_time) * 1000 / nullif(:sales, 0))::numeric, 1), calls,
       round(((total_exec_time + total_plan_time) * 1000 / nullif(calls, 0))::numeric, 1),
       round((total_plan_time * 1000 / nullif(calls, 0))::numeric, 1),
       toplevel, regexp_replace(left(query, 110), '\s+', ' ', 'g')
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY total_exec_time + total_plan_time DESC LIMIT 40
SQL
    fi
    jq -r --arg name "$name" --arg c "$c" --arg r "$r" --arg op "$(main_op "$name")" '
        ([.ops | to_entries[] | select(.key | test("^(purchase|capture)")) | .value.accepted] | add // 0) as $sales
        | def per(x): if $sales > 0 and x != null then (x * 1000 / $sales * 10 | round / 10) else "-" end;
        [$name, $c, $r,
         (if ($name | startswith("hold-capture")) then ($sales / .duration_s * 10 | round / 10) else .per_s end),
         .ops[$op].latency_ms.p50, .ops[$op].latency_ms.p99,
         per(.cpu_ms.server), per(.cpu_ms.postgres), per(.cpu_ms.client), .ok] | @tsv' \
        "$work/$tag.json" >>"$work/runs.tsv" 2>/dev/null || printf '%s\t%s\t%s\t-\t-\t-\t-\t-\t-\tfalse\n' "$name" "$c" "$r" >>"$work/runs.tsv"
    jq -r '"  \(.per_s) responses/s; outcomes: \(.outcomes | tostring); cpu ms: \(.cpu_ms // {} | tostring)"' "$work/$tag.json" >&2 2>/dev/null || true
    # Webhook rows: name clients round lag_p50 lag_p99 lag_max drain_s received expected
    jq -r --arg name "$name" --arg c "$c" --arg r "$r" '.facts.webhook // empty
        | [$name, $c, $r, .lag_ms.p50, .lag_ms.p99, .lag_ms.max, .drain_s, .received, .expected] | @tsv' \
        "$work/$tag.json" >>"$work/webhooks.tsv" 2>/dev/null || true
    jq -r '.facts.webhook // empty | "  webhook: \(.received)/\(.expected) events, lag ms \(.lag_ms | tostring), drained in \(.drain_s) s"' "$work/$tag.json" >&2 2>/dev/null || true
}

# Latency percentiles from pgbench's per-transaction log (3rd column, µs).
pgbench_run() { # name clients round database script-args...
    local name=$1 c=$2 r=$3 db=$4; shift 4
    local tag=$name.c$c.r$r
    step "pgbench baseline $name ($c clients, ${seconds}s, round $r)"
    rm -f "$work/$tag".log*
    "$pgbench" -n -M prepared -c "$c" -j "$((c < 2 ? c : 2))" -T "$seconds" --log --log-prefix="$work/$tag.log" \
        "$@" "$BENCH_PG/$db" >"$work/$tag.out" 2>&1 || { cat "$work/$tag.out" >&2; die "pgbench $name failed"; }
    local tps
    tps=$(awk '/^tps = / { print $3; exit }' "$work/$tag.out")
    cat "$work/$tag".log* | awk '{ print $3 }' | sort -n >"$work/$tag.lat"
    rm -f "$work/$tag".log*
    awk -v tps="$tps" '{ v[NR] = $1 } END {
        p50 = v[int(NR * 0.50) + 1]; p99 = v[int(NR * 0.99) + 1]
        printf "%.1f %.2f %.2f\n", tps, p50 / 1000, p99 / 1000 }' "$work/$tag.lat" >"$work/$tag.result"
    read -r btps bp50 bp99 <"$work/$tag.result"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t-\t-\t-\ttrue\n' "$name" "$c" "$r" "$btps" "$bp50" "$bp99" >>"$work/runs.tsv"
    echo "  $(cat "$work/$tag.result") (tps p50_ms p99_ms)" >&2
}
naive_run() { # name clients round script
    fresh_db ontab_bench_naive
    PGOPTIONS='-c client_min_messages=warning' \
        psql -qX -v ON_ERROR_STOP=1 "$BENCH_PG/ontab_bench_naive" -f bench/pgbench/naive_schema.sql >/dev/null
    pgbench_run "$1" "$2" "$3" ontab_bench_naive -f "$4"
}
# This machine's ceiling for HTTP itself: wrk (a lean C client) against
# the same server's GET /healthz, which answers without any other work.
# No purchase rate can pass it; the table sets the targets beside it.
http_floor_run() { # clients round
    local c=$1 r=$2 tag=http_floor.c$1.r$2
    step "wrk GET /healthz ($c connections, ${seconds}s, round $r)"
    wrk -t 2 -c "$c" -d "${seconds}s" --latency "http://127.0.0.1:$BENCH_PORT/healthz" >"$work/$tag.out" 2>&1 ||
        { cat "$work/$tag.out" >&2; die "wrk failed"; }
    # wrk prints latencies as 812.00us, 1.23ms or 1.02s.
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
         /^Requests\/sec:/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
         /Non-2xx/ { bad = 1 }
         END { printf "http_floor\t%s\t%s\t%.1f\t%.2f\t%.2f\t-\t-\t-\t%s\n", c, r, rps, p50, p99, bad ? "false" : "true" }' \
        c="$c" r="$r" "$work/$tag.out" >>"$work/runs.tsv"
    echo "  $(tail -1 "$work/runs.tsv" | cut -f4-6) (req/s p50_ms p99_ms)" >&2
}
if asked uncontended; then
    fresh_db ontab_bench_tpcb
    "$pgbench" -i -q -s "$TPCB_SCALE" "$BENCH_PG/ontab_bench_tpcb" >"$work/tpcb-init.out" 2>&1 ||
        { cat "$work/tpcb-init.out" >&2; die "pgbench -i failed"; }
fi

# The second opinion: every invariant of everything the scenarios stored,
# re-checked from the database by `ontab audit`, after every round.
audit_db() { # when
    step "ontab audit of ontab_bench ($1)"
    if DATABASE_URL=$BENCH_PG/ontab_bench "$ontab" audit >"$work/audit.txt" 2>&1; then
        tail -1 "$work/audit.txt" >&2
        echo "$1: $(tail -1 "$work/audit.txt")" >>"$work/audits.txt"
    else
        cat "$work/audit.txt" >&2
        echo "$1: **ontab audit FAILED**" >>"$work/audits.txt"
        failed=1
    fi
}

: >"$work/runs.tsv"
: >"$work/webhooks.tsv"
for c in "${client_counts[@]}"; do
    for r in $(seq "$ROUNDS"); do
        wants uncontended && run_scenario uncontended "$c" "$r" uncontended --customers "$CUSTOMERS" --products "$PRODUCTS"
        wants uncontended-webhook && run_scenario uncontended-webhook "$c" "$r" uncontended --customers "$CUSTOMERS" --products "$PRODUCTS" --webhook
        wants hold-capture && run_scenario hold-capture "$c" "$r" hold-capture --customers "$CUSTOMERS" --products "$PRODUCTS"
        wants hot-product && run_scenario hot-product "$c" "$r" hot-product
        wants hot-product-webhook && run_scenario hot-product-webhook "$c" "$r" hot-product --webhook
        wants hold-capture-hot && run_scenario hold-capture-hot "$c" "$r" hold-capture-hot
        wants hot-product-held && run_scenario hot-product-held "$c" "$r" hot-product-held --pending-holds "$PENDING_HOLDS"
        wants sellout && run_scenario sellout "$c" "$r" sellout
        wants hot-customer && run_scenario hot-customer "$c" "$r" hot-customer
        # The same customer with a limit the run cannot reach: every purchase is
        # accepted, so this is the rate of purchases on one customer's ledger.
        wants hot-customer && run_scenario hot-customer-accepted "$c" "$r" hot-customer --credit-limit 100000000000000
        wants mixed && run_scenario mixed "$c" "$r" mixed --customers "$CUSTOMERS" --products "$PRODUCTS"
        audit_db "after round $r at $c clients"
        { asked uncontended || asked hot-product; } && http_floor_run "$c" "$r"
        asked uncontended && pgbench_run tpcb "$c" "$r" ontab_bench_tpcb
        asked uncontended && naive_run naive_uncontended "$c" "$r" bench/pgbench/naive_uncontended.sql
        asked hot-product && naive_run naive_hot_product "$c" "$r" bench/pgbench/naive_hot_product.sql
    done
done
# Once, last, at the last client count: its million-entry ledger stays in
# the database, and the measure is a ratio within the one run.
history_clients=${client_counts[${#client_counts[@]} - 1]}
if wants history; then
    run_scenario history "$history_clients" 1 history --history-entries "$HISTORY_ENTRIES" --database-url "$BENCH_PG/ontab_bench"
    audit_db "after history"
fi

hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null || echo 0)
kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true
server_pid=""

# --- the table -------------------------------------------------------------------
# Median over the rounds of one column of runs.tsv (4 rate, 5 p50, 6 p99,
# 7-9 CPU µs per purchase: server, PostgreSQL, client).
median() { # name clients column
    awk -F'\t' -v n="$1" -v c="$2" -v col="$3" '$1 == n && $2 == c && $col != "-" && $col != "" { print $col }' "$work/runs.tsv" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# Median over the rounds of name's rate / base's rate, each pair from one round.
median_ratio() { # name base clients
    awk -F'\t' -v n="$1" -v b="$2" -v c="$3" '
        $2 == c && $1 == n { a[$3] = $4 } $2 == c && $1 == b { z[$3] = $4 }
        END { for (r in a) if ((r in z) && z[r] + 0 > 0) print a[r] / z[r] }' "$work/runs.tsv" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
rounds_of() { # name clients: each round's rate
    awk -F'\t' -v n="$1" -v c="$2" '$1 == n && $2 == c { printf "%s%s", sep, $4; sep = ", " }' "$work/runs.tsv"
}
all_ok() { # name clients: every round's audit passed
    awk -F'\t' -v n="$1" -v c="$2" '$1 == n && $2 == c { seen = 1; if ($10 != "true") bad = 1 } END { exit !(seen && !bad) }' "$work/runs.tsv"
}
at_least() { awk -v a="$1" -v t="$2" 'BEGIN { exit !(a != "-" && a + 0 >= t) }'; }
at_most() { awk -v a="$1" -v t="$2" 'BEGIN { exit !(a != "-" && a + 0 <= t) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Runs in $(...), a subshell: a miss is remembered in a file, not a variable.
verdict() { # condition-exit-status scenario clients
    if ! all_ok "$2" "$3"; then echo "**NO: audit failed**"; touch "$work/missed"
    elif [ "$1" = 0 ]; then echo "yes"
    else echo "**no**"; touch "$work/missed"; fi
}
# Median over the rounds of one column of webhooks.tsv (4 lag p50, 5 p99,
# 6 max, all ms; 7 drain seconds).
lag_median() { # name clients column
    awk -F'\t' -v n="$1" -v c="$2" -v col="$3" '$1 == n && $2 == c && $col != "" { print $col }' "$work/webhooks.tsv" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# The two rows of a *-webhook scenario: its rate against the same scenario
# without an endpoint, then its delivery lag.
webhook_rows() { # base-scenario clients
    local base=$1 c=$2 name=$1-webhook ratio lag met
    ratio=$(median_ratio "$name" "$base" "$c"); met=0; at_least "$ratio" 0.85 || met=1
    row "$base, events to one webhook endpoint" "$name" "$c" "$base, no endpoint" "$(median "$base" "$c" 4)" "$ratio×" "≥ 0.85×" "$(verdict $met "$name" "$c")"
    lag=$(lag_median "$name" "$c" 5); met=0; at_most "$lag" 1000 || met=1
    echo "| $name: delivery lag | $c | | p50 $(lag_median "$name" "$c" 4) ms | p99 $lag ms | | event created_at → receiver | max $(lag_median "$name" "$c" 6) ms, drained $(lag_median "$name" "$c" 7) s after the load | - | p99 ≤ 1000 ms | $(verdict $met "$name" "$c") |"
}
# What a target asks for, as a share of the no-op request rate of the same
# rounds (http_floor_run): at 100 % or more it is beyond this machine.
ceiling_row() { # clients target-label baseline-rate factor
    local floor need share
    floor=$(median http_floor "$1" 4)
    need=$(awk -v b="$3" -v f="$4" 'BEGIN { if (b == "-" || b == "") print "-"; else printf "%.0f", b * f }')
    share=$(awk -v n="$need" -v f="$floor" 'BEGIN { if (n == "-" || f == "-" || f + 0 == 0) print "-"; else printf "%.2f", n / f }')
    echo "| GET /healthz, no work (wrk): this machine's HTTP ceiling | $1 | $floor | $(median http_floor "$1" 5) | $(median http_floor "$1" 6) | - | $2 = $need purchases/s | $need | $share× of the ceiling | (information) | - |"
}
cpu() { echo "$(median "$1" "$2" 7) / $(median "$1" "$2" 8) / $(median "$1" "$2" 9)"; }
row() { # label name clients baseline-label baseline-value ratio target verdict
    echo "| $1 | $3 | $(median "$2" "$3" 4) | $(median "$2" "$3" 5) | $(median "$2" "$3" 6) | $(cpu "$2" "$3") | $4 | $5 | $6 | $7 | $8 |"
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
out=bench/results/$stamp.md
{
    echo "# ontab benchmark, $stamp"
    echo
    echo "Clients $CLIENTS, $ROUNDS round(s) of $DURATION per run (+$WARMUP warm-up for ontab), PostgreSQL $pg_version," \
        "$(nproc) CPUs, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')" \
        "$([ -n "$cluster" ] && echo '; a throwaway cluster of its own' || echo "; the cluster at $BENCH_PG (shared: its CPU includes everyone's)")."
    echo "Reproduce: \`CLIENTS=\"$CLIENTS\" ROUNDS=$ROUNDS DURATION=$DURATION OWN_CLUSTER=$OWN_CLUSTER bench/run.sh ${selected[*]}\`"
    echo
    echo "Medians of the rounds; each ratio is the median of the rounds' ratios, each taken within one round."
    echo "tps: responses/s (for hold-capture rows: sales/s, i.e. accepted captures/s, each a hold and a capture)."
    echo "CPU: µs per accepted purchase (captures are purchases) over the measured window, server / PostgreSQL (the whole cluster) / load generator."
    echo
    echo "| scenario | clients | tps | p50 ms | p99 ms | CPU µs server / PG / client | baseline | baseline tps | ratio | target | met? |"
    echo "|---|---:|---:|---:|---:|---|---|---:|---:|---|---|"
    for c in "${client_counts[@]}"; do
        if wants uncontended; then
            if asked uncontended; then
                ratio=$(median_ratio uncontended tpcb "$c"); met=0; at_least "$ratio" 1.5 || met=1
                row uncontended uncontended "$c" "pgbench TPC-B-like, -M prepared" "$(median tpcb "$c" 4)" "$ratio×" "≥ 1.5×" "$(verdict $met uncontended "$c")"
                ratio=$(median_ratio uncontended naive_uncontended "$c")
                row uncontended uncontended "$c" "original flow, uncontended" "$(median naive_uncontended "$c" 4)" "$ratio×" "(information)" "$(verdict 0 uncontended "$c")"
                ceiling_row "$c" "1.5× TPC-B" "$(median tpcb "$c" 4)" 1.5
                if [ "$c" = 64 ]; then
                    met=0; at_most "$(median uncontended "$c" 8)" 225 && at_most "$(median uncontended "$c" 7)" 60 || met=1
                    row "uncontended, CPU per purchase" uncontended "$c" "-" "-" "-" "PG ≤ 225 µs, server ≤ 60 µs" "$(verdict $met uncontended "$c")"
                fi
            else
                row uncontended uncontended "$c" "-" "-" "-" "(compared below)" "$(verdict 0 uncontended "$c")"
            fi
        fi
        wants uncontended-webhook && webhook_rows uncontended "$c"
        if wants hold-capture; then
            ratio=$(median_ratio hold-capture uncontended "$c")
            row "hold-capture (sales/s)" hold-capture "$c" "uncontended purchases" "$(median uncontended "$c" 4)" "$ratio×" "(information)" "$(verdict 0 hold-capture "$c")"
        fi
        if wants hot-product; then
            if asked hot-product; then
                ratio=$(median_ratio hot-product naive_hot_product "$c"); met=0; at_least "$ratio" 20 || met=1
                row hot-product hot-product "$c" "original flow, hot product" "$(median naive_hot_product "$c" 4)" "$ratio×" "≥ 20×, no oversell" "$(verdict $met hot-product "$c")"
                ceiling_row "$c" "20× the original flow" "$(median naive_hot_product "$c" 4)" 20
            else
                row hot-product hot-product "$c" "-" "-" "-" "(compared below)" "$(verdict 0 hot-product "$c")"
            fi
        fi
        wants hot-product-webhook && webhook_rows hot-product "$c"
        if wants hold-capture-hot; then
            ratio=$(median_ratio hold-capture-hot hot-product "$c")
            row "hold-capture-hot (sales/s)" hold-capture-hot "$c" "hot-product purchases" "$(median hot-product "$c" 4)" "$ratio×" "(information)" "$(verdict 0 hold-capture-hot "$c")"
        fi
        if wants hot-product-held; then
            ratio=$(median_ratio hot-product-held hot-product "$c"); met=0; at_least "$ratio" 0.9 || met=1
            row "hot-product, $PENDING_HOLDS pending holds" hot-product-held "$c" "hot-product, no holds" "$(median hot-product "$c" 4)" "$ratio×" "≥ 0.90×" "$(verdict $met hot-product-held "$c")"
        fi
        wants sellout && row "hot-product, stock runs out" sellout "$c" "audit" "-" "-" "no oversell, rest insufficient_stock" "$(verdict 0 sellout "$c")"
        wants hot-customer && row hot-customer hot-customer "$c" "audit" "-" "-" "never above the limit" "$(verdict 0 hot-customer "$c")"
        wants hot-customer && row "hot-customer, limit out of reach" hot-customer-accepted "$c" "audit" "-" "-" "every purchase accepted, chain intact" "$(verdict 0 hot-customer-accepted "$c")"
        wants mixed && row "mixed (10 tenants; purchase latency)" mixed "$c" "audit" "-" "-" "all invariants" "$(verdict 0 mixed "$c")"
    done
    if wants history; then
        f=$work/history.c$history_clients.r1.json
        e50=$(jq -r '.ops.purchase_empty_ledger.latency_ms.p50' "$f" 2>/dev/null || echo 0)
        ratio=$(jq -r '.facts.p50_ratio_long_vs_empty // "-"' "$f" 2>/dev/null || echo "-")
        met=0; at_most "$ratio" 1.1 || met=1
        row "history ($HISTORY_ENTRIES entries; p50 vs empty ledger)" history "$history_clients" "same run, empty ledger" "p50 $e50 ms" "$ratio×" "≤ 1.1×" "$(verdict $met history "$history_clients")"
    fi
    peak=0
    for f in "$work"/rss.*; do
        [[ $f == *.new ]] && continue
        kb=$(cat "$f" 2>/dev/null || true)
        [ "${kb:-0}" -gt "$peak" ] && peak=$kb
    done
    [ "${hwm_kb:-0}" -le $((64 * 1024)) ] && [ "$peak" -le $((64 * 1024)) ] && mem=yes || { mem="**no**"; failed=1; }
    echo "| server memory | | peak VmRSS $(mib "$peak") MiB | | | | VmHWM (whole run) | $(mib "${hwm_kb:-0}") MiB | - | ≤ 64 MiB | $mem |"
    echo
    echo "Every round (rate per round, in order; the spread is the machine's noise):"
    echo
    echo "| run | clients | rounds |"
    echo "|---|---:|---|"
    for c in "${client_counts[@]}"; do
        for n in "${scenarios[@]}" hot-customer-accepted http_floor tpcb naive_uncontended naive_hot_product; do
            r=$(rounds_of "$n" "$c"); [ -n "$r" ] && echo "| $n | $c | $r |"
        done
    done
    echo
    echo "\`ontab audit\` of the whole benchmark database:"
    echo
    sed 's/^/- /' "$work/audits.txt" 2>/dev/null || echo "- (not run)"
    echo
    echo "Outcomes per run:"
    echo
    for f in "$work"/*.json; do
        jq -r --arg s "$(basename "$f" .json)" '"- \($s): " + (.outcomes | to_entries | map("\(.key) × \(.value)") | join(", ")) + (if .ok then "" else "; **VIOLATIONS**: " + (.violations | join("; ")) end)' "$f" 2>/dev/null
    done
    if [ "$STATEMENTS" = 1 ]; then
        echo
        echo "Statements by time (pg_stat_statements, track = all, so a function's statements appear beside its call): µs (executing and planning) per accepted purchase of the run, calls, µs per call, of which planning, top level, query. See $stamp/*.pgss."
    fi
} >"$out"
# Keep the raw JSON next to the table for anyone checking a number.
mkdir -p "bench/results/$stamp"
cp "$work"/*.json "$work"/*.out "$work"/runs.tsv "$work"/webhooks.tsv "bench/results/$stamp/" 2>/dev/null || true
cp "$work"/*.pgss "bench/results/$stamp/" 2>/dev/null || true
# The server's warnings (a recording flush that failed, a lost lease): what
# explains a duplicate delivery or a lag spike afterwards.
grep -E ' (WARN|ERROR) ' "$work/serve.log" >"bench/results/$stamp/serve-warnings.log" 2>/dev/null || true
cat "$out"
[ -e "$work/missed" ] && failed=1
echo >&2
echo "written: $out" >&2
exit "$failed"
