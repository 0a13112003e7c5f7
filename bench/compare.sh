#!/usr/bin/env bash
# Two builds of ontab on one machine, in the same rounds: did a change cost
# single-PostgreSQL throughput? (docs/benchmarks.md, "Before and after".)
#
#   BASE=bf9faf2 bench/compare.sh      # that commit against this checkout
#   BASE=bf9faf2 VIA="direct pgbouncer" CLIENTS="16 64" bench/compare.sh
#
# Builds this checkout's ontab and ontab-load (release), and BASE's ontab
# in a git worktree (its own target dir under target/, kept between runs).
# Starts two throwaway PostgreSQL clusters with the same settings, one per
# build (so neither sees the other's roles or databases), migrates each
# with its own binary, and for each way in VIA starts one `ontab serve` of
# each build: `direct` connects to its PostgreSQL; `pgbouncer` goes through
# one PgBouncer in transaction mode in front of both (with
# `--statements unnamed`, which PgBouncer < 1.21 needs; both builds get the
# same flags). Then, for each client count, ROUNDS times, it runs each of
# SCENARIOS against the base and then the head (the
# same ontab-load, this checkout's), and prints rates, latencies, the CPU
# per purchase of PostgreSQL and of the server, and the ratio head / base
# of each round. Ends with `ontab audit` of both databases.
#
# Environment (defaults in brackets):
#   BASE       (required) a commit, tag or branch: the "before"
#   VIA        [direct pgbouncer]
#   SCENARIOS  [uncontended hot-product]; also uncontended-webhook and
#              hot-product-webhook (events to one endpoint in ontab-load,
#              as in bench/run.sh)
#   CLIENTS    [16 64]   client counts
#   ROUNDS     [1]       rounds per client count
#   DURATION   [20s]     measured time per run
#   WARMUP     [2s]
#   CUSTOMERS  [1000] / PRODUCTS [1000]   uncontended sizes
#   POOL_SIZE  [16]      each server's database pool (and PgBouncer's per
#                        database)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BASE=${BASE:-}
[ -n "$BASE" ] || { echo "bench/compare.sh: set BASE to the commit to compare with" >&2; exit 2; }
VIA=${VIA:-direct pgbouncer}
SCENARIOS=${SCENARIOS:-uncontended hot-product}
CLIENTS=${CLIENTS:-16 64}
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
CUSTOMERS=${CUSTOMERS:-1000}
PRODUCTS=${PRODUCTS:-1000}
POOL_SIZE=${POOL_SIZE:-16}
read -r -a client_counts <<<"$CLIENTS"
read -r -a vias <<<"$VIA"
read -r -a scenarios <<<"$SCENARIOS"
max_clients=0
for c in "${client_counts[@]}"; do
    [[ $c =~ ^[0-9]+$ && $c -gt 0 ]] || { echo "bench/compare.sh: CLIENTS must be positive integers" >&2; exit 2; }
    [ "$c" -gt "$max_clients" ] && max_clients=$c
done
for s in "${scenarios[@]}"; do
    [[ $s =~ ^(uncontended|hot-product)(-webhook)?$ ]] ||
        { echo "bench/compare.sh: SCENARIOS lists uncontended, hot-product, uncontended-webhook, hot-product-webhook (got '$s')" >&2; exit 2; }
done
for v in "${vias[@]}"; do
    [[ $v = direct || $v = pgbouncer ]] || { echo "bench/compare.sh: VIA lists direct and/or pgbouncer (got '$v')" >&2; exit 2; }
done

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench/compare.sh: %s\n' "$*" >&2; exit 2; }
url() { # port database
    echo "host=127.0.0.1 port=$1 user=postgres dbname=$2 sslmode=disable"
}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$pg_bin" ] || die "no PostgreSQL binaries under /usr/lib/postgresql"
for tool in psql jq git; do command -v $tool >/dev/null || die "needs $tool"; done
if [[ " ${vias[*]} " == *" pgbouncer "* ]] && ! command -v pgbouncer >/dev/null; then
    step "installing pgbouncer"
    [ "$(id -u)" = 0 ] || die "needs pgbouncer: install it or run as root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq pgbouncer >/dev/null
fi
base_rev=$(git rev-parse --verify "$BASE^{commit}") || die "BASE '$BASE' is not a commit"
head_rev=$(git rev-parse HEAD)
dirty=""
git diff --quiet HEAD -- || dirty=" (+ uncommitted changes)"

step "building this checkout's ontab and ontab-load (release)"
cargo build --release --locked -p ontab -p ontab-load >&2
target_dir=${CARGO_TARGET_DIR:-target}
head_bin=$target_dir/release/ontab
load=$target_dir/release/ontab-load

work=$(mktemp -d /tmp/ontab-compare.XXXXXX)
step "building ontab at ${base_rev:0:10} (release, in a worktree)"
build_ontab_at "$base_rev" "$work" || die "ontab at ${base_rev:0:10} did not build"
base_bin=$work/ontab-base

clusters=()
pids=()
bouncer=""
stop_servers() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_servers
    [ -n "$bouncer" ] && kill "$(cat "$bouncer/pgbouncer.pid" 2>/dev/null)" 2>/dev/null || true
    for cluster in "${clusters[@]}"; do
        as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$cluster"
    done
    git worktree prune 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

declare -A pg_port=([base]=55451 [head]=55452)
declare -A binary=([base]=$base_bin [head]=$head_bin)
declare -A postmaster
for which in base head; do
    step "starting a throwaway PostgreSQL for $which (:${pg_port[$which]})"
    cluster=$(mktemp -d /tmp/ontab-compare-pg.XXXXXX)
    clusters+=("$cluster")
    [ "$(id -u)" = 0 ] && chown postgres "$cluster"
    as_pg "$pg_bin/initdb" -D "$cluster/data" -U postgres --auth=trust >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p ${pg_port[$which]} -k $cluster -c max_connections=$((max_clients + 100))" \
        start >/dev/null
    postmaster[$which]=$(head -1 "$cluster/data/postmaster.pid")
    psql -qX "$(url "${pg_port[$which]}" postgres)" -c "CREATE DATABASE ontab_bench" >/dev/null
    "${binary[$which]}" migrate --database-url "$(url "${pg_port[$which]}" ontab_bench)" >/dev/null
done

if [[ " ${vias[*]} " == *" pgbouncer "* ]]; then
    step "starting PgBouncer (transaction mode, :6442) in front of both"
    bouncer=$work/pgbouncer
    mkdir -p "$bouncer"
    cat >"$bouncer/pgbouncer.ini" <<INI
[databases]
base = host=127.0.0.1 port=${pg_port[base]} dbname=ontab_bench
head = host=127.0.0.1 port=${pg_port[head]} dbname=ontab_bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 6442
unix_socket_dir =
auth_type = trust
auth_file = $bouncer/users.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = $POOL_SIZE
ignore_startup_parameters = extra_float_digits
logfile = $bouncer/pgbouncer.log
pidfile = $bouncer/pgbouncer.pid
INI
    printf '"postgres" ""\n' >"$bouncer/users.txt"
    [ "$(id -u)" = 0 ] && chown -R postgres "$bouncer" "$work"
    as_pg pgbouncer -d "$bouncer/pgbouncer.ini"
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/6442) 2>/dev/null && break
        sleep 0.1
    done
    bouncer_pid=$(cat "$bouncer/pgbouncer.pid")
fi

ONTAB_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ONTAB_ADMIN_TOKEN
declare -A http_port=([base]=18093 [head]=18094)
declare -A server
# Not in a $(...) subshell: the pid must reach `pids` here, so that the
# cleanup stops the servers.
serve() { # which via
    local database_url statements=prepared
    database_url=$(url "${pg_port[$1]}" ontab_bench)
    if [ "$2" = pgbouncer ]; then
        database_url=$(url 6442 "$1")
        statements=unnamed
    fi
    DATABASE_URL=$database_url ONTAB_LISTEN=127.0.0.1:${http_port[$1]} ONTAB_DB_POOL_SIZE=$POOL_SIZE \
        ONTAB_DB_STATEMENTS=$statements ONTAB_WEBHOOK_ALLOW_PRIVATE=true RUST_LOG=warn "${binary[$1]}" serve >>"$work/$1.serve.log" 2>&1 &
    pids+=($!)
    server[$1]=$!
}
clock_ticks=$(getconf CLK_TCK 2>/dev/null || echo 100)

: >"$work/runs.tsv"
run() { # via clients round which scenario args...
    local via=$1 c=$2 r=$3 which=$4 scenario=$5; shift 5
    local tag=$scenario.$via.$which.c$c.r$r probes=(--cpu-pid "server=${server[$which]}" --cpu-tree "postgres=${postmaster[$which]}")
    [ "$via" = pgbouncer ] && probes+=(--cpu-pid "pgbouncer=$bouncer_pid")
    step "$scenario, $which, $via ($c clients, $DURATION, round $r)"
    # A *-webhook row is its scenario with every event sent to ontab-load's
    # receiver on 127.0.0.1 (both servers allow private addresses).
    local load_scenario=${scenario%-webhook}
    [ "$load_scenario" != "$scenario" ] && set -- "$@" --webhook
    "$load" --scenario "$load_scenario" --base-url "http://127.0.0.1:${http_port[$which]}" --clients "$c" \
        --duration "$DURATION" --warmup "$WARMUP" --wait-ready 120s --json \
        "${probes[@]}" --clock-ticks "$clock_ticks" "$@" \
        >"$work/$tag.json" 2>"$work/$tag.err" || { cat "$work/$tag.err" >&2; die "$tag failed"; }
    jq -e .ok "$work/$tag.json" >/dev/null || { cat "$work/$tag.err" >&2; die "$tag: not ok"; }
    jq -r --arg s "$scenario" --arg via "$via" --arg w "$which" --arg c "$c" --arg r "$r" '
        ([.ops | to_entries[] | select(.key | test("^purchase")) | .value.accepted] | add // 0) as $sales
        | [$s, $via, $c, $r, $w, .per_s, .ops.purchase.latency_ms.p50, .ops.purchase.latency_ms.p99,
           (if $sales > 0 then (.cpu_ms.postgres * 1000 / $sales | round) else "-" end),
           (if $sales > 0 then (.cpu_ms.server * 1000 / $sales | round) else "-" end)] | @tsv' \
        "$work/$tag.json" >>"$work/runs.tsv"
    tail -1 "$work/runs.tsv" | awk -F'\t' '{ printf "  %s/s, p50 %s ms, p99 %s ms, PostgreSQL %s µs and server %s µs CPU per purchase\n", $6, $7, $8, $9, $10 }' >&2
}

for via in "${vias[@]}"; do
    step "servers $via"
    serve base "$via"
    serve head "$via"
    for c in "${client_counts[@]}"; do
        for r in $(seq "$ROUNDS"); do
            # Alternating, so a noisy minute hits both alike.
            for scenario in "${scenarios[@]}"; do
                sizes=()
                [ "${scenario%-webhook}" = uncontended ] && sizes=(--customers "$CUSTOMERS" --products "$PRODUCTS")
                for which in base head; do
                    run "$via" "$c" "$r" "$which" "$scenario" "${sizes[@]}"
                done
            done
        done
    done
    stop_servers
done

audits=""
for which in base head; do
    step "ontab audit of $which"
    if DATABASE_URL=$(url "${pg_port[$which]}" ontab_bench) "${binary[$which]}" audit >"$work/audit.$which" 2>&1; then
        audits+="$which: $(tail -1 "$work/audit.$which"); "
    else
        cat "$work/audit.$which" >&2
        die "ontab audit failed on $which"
    fi
done

step "results"
echo "base: ${base_rev:0:10} ($(git log -1 --format=%s "$base_rev"))"
echo "head: ${head_rev:0:10}$dirty ($(git log -1 --format=%s "$head_rev"))"
echo
echo "| scenario | via | clients | round | base: purchases/s, p50 / p99 ms, PG / server CPU µs per purchase | head: the same | head / base |"
echo "|---|---|---:|---:|---|---|---:|"
awk -F'\t' '
    $5 == "base" { b[$1 FS $2 FS $3 FS $4] = $0 }
    $5 == "head" { k = $1 FS $2 FS $3 FS $4; split(b[k], a, FS)
                   printf "| %s | %s | %s | %s | %s, %s / %s, %s / %s | %s, %s / %s, %s / %s | %.2f× |\n",
                          $1, $2, $3, $4, a[6], a[7], a[8], a[9], a[10], $6, $7, $8, $9, $10, $6 / a[6] }' "$work/runs.tsv"
echo
echo "Median of the rounds' ratios (head / base, purchases/s):"
echo
awk -F'\t' '
    $5 == "base" { b[$1 FS $2 FS $3 FS $4] = $6 }
    $5 == "head" { k = $1 FS $2 FS $3; r[k] = r[k] " " $6 / b[k FS $4]; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
    END {
        for (i = 1; i <= n; i++) {
            k = order[i]; m = split(substr(r[k], 2), v, " ")
            for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (v[y] < v[x]) { t = v[x]; v[x] = v[y]; v[y] = t }
            med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
            split(k, f, FS)
            printf "- %s, %s, %s clients: %.2f× (rounds: %s)\n", f[1], f[2], f[3], med, substr(r[k], 2)
        }
    }' "$work/runs.tsv"
echo
echo "audits: $audits"
