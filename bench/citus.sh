#!/usr/bin/env bash
# The overhead of a Citus cluster against one PostgreSQL (docs/scale-out.md):
#
#   CITUS_NODES="127.0.0.1:9700 127.0.0.1:9701 127.0.0.1:9702" bench/citus.sh
#
# CITUS_NODES names a running Citus cluster's nodes, the coordinator first
# (the citus extension installed, superuser `postgres` with trust auth on
# each; nothing here builds or installs Citus). The script builds ontab and
# ontab-load (release), starts a throwaway one-node PostgreSQL with the
# same defaults as a fresh cluster, creates database ontab_bench on it and
# on every Citus node (the extension in each, the workers added on the
# coordinator), and starts two `ontab serve`: one on each. `ontab serve`
# migrates, and on the coordinator distributes the tables by business
# (src/db/citus.rs). Then, for each client count of CLIENTS, ROUNDS times,
# it runs `uncontended` and `hot-product` against one and then the other,
# and prints their rates, latencies and PostgreSQL CPU per purchase (the
# whole cluster's: every node's postmaster and children) with the ratio
# Citus / one PostgreSQL of each round, then `ontab audit` of both.
#
# On one machine every node shares its CPUs: the ratio is what the
# distribution itself costs (the coordinator's planning, the hop to the
# worker, the worker's own work), not what more machines would gain.
#
# Environment (defaults in brackets):
#   CITUS_NODES  (required) host:port of the coordinator, then the workers
#   CLIENTS      [16 64]  client counts
#   ROUNDS       [1]      rounds per client count
#   DURATION     [20s]    measured time per run
#   WARMUP       [2s]
#   CUSTOMERS    [1000] / PRODUCTS [1000]   uncontended sizes
#   POOL_SIZE    [16]     each server's database pool
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a nodes <<<"${CITUS_NODES:-}"
[ ${#nodes[@]} -ge 2 ] || { echo "bench/citus.sh: set CITUS_NODES to the coordinator and at least one worker, host:port each" >&2; exit 2; }
CLIENTS=${CLIENTS:-16 64}
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
CUSTOMERS=${CUSTOMERS:-1000}
PRODUCTS=${PRODUCTS:-1000}
POOL_SIZE=${POOL_SIZE:-16}
read -r -a client_counts <<<"$CLIENTS"
max_clients=0
for c in "${client_counts[@]}"; do [ "$c" -gt "$max_clients" ] && max_clients=$c; done

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench/citus.sh: %s\n' "$*" >&2; exit 2; }
url() { # host:port database
    echo "host=${1%:*} port=${1#*:} user=postgres dbname=$2 sslmode=disable"
}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$pg_bin" ] || die "no PostgreSQL binaries under /usr/lib/postgresql"
for tool in psql jq; do command -v $tool >/dev/null || die "needs $tool"; done

step "building ontab and ontab-load (release)"
cargo build --release --locked -p ontab -p ontab-load >&2
target_dir=${CARGO_TARGET_DIR:-target}
ontab=$target_dir/release/ontab
load=$target_dir/release/ontab-load

work=$(mktemp -d /tmp/ontab-citus-bench.XXXXXX)
cluster=""
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
    if [ -n "$cluster" ]; then
        as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$cluster"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

step "starting a throwaway PostgreSQL (one node)"
cluster=$(mktemp -d /tmp/ontab-citus-bench-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$cluster"
as_pg "$pg_bin/initdb" -D "$cluster/data" -U postgres --auth=trust >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p 55441 -k $cluster -c max_connections=$((max_clients + 50))" start >/dev/null
single=127.0.0.1:55441

postmaster() { # host:port
    head -1 "$(psql -qtAX "$(url "$1" postgres)" -c 'SHOW data_directory')/postmaster.pid" 2>/dev/null || true
}

step "database ontab_bench on the one node and on every Citus node"
psql -qX "$(url $single postgres)" -c "CREATE DATABASE ontab_bench" >/dev/null
for node in "${nodes[@]}"; do
    psql -qX "$(url "$node" postgres)" -c "DROP DATABASE IF EXISTS ontab_bench WITH (FORCE)" \
        -c "CREATE DATABASE ontab_bench" >/dev/null || die "cannot create ontab_bench on $node"
    psql -qX "$(url "$node" ontab_bench)" -c "CREATE EXTENSION citus" >/dev/null
done
coordinator=${nodes[0]}
psql -qX -v ON_ERROR_STOP=1 "$(url "$coordinator" ontab_bench)" \
    -c "SELECT citus_set_coordinator_host('${coordinator%:*}', ${coordinator#*:})" >/dev/null
for worker in "${nodes[@]:1}"; do
    psql -qX -v ON_ERROR_STOP=1 "$(url "$coordinator" ontab_bench)" \
        -c "SELECT citus_add_node('${worker%:*}', ${worker#*:})" >/dev/null
done

ONTAB_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ONTAB_ADMIN_TOKEN
# Not in a $(...) subshell: the pid must reach `pids` here, so that the
# cleanup stops the servers (left running, their background work would
# weigh on the next measurement).
serve() { # name host:port http-port
    DATABASE_URL=$(url "$2" ontab_bench) ONTAB_LISTEN=127.0.0.1:$3 ONTAB_DB_POOL_SIZE=$POOL_SIZE \
        RUST_LOG=warn "$ontab" serve >"$work/$1.serve.log" 2>&1 &
    pids+=($!)
}
step "starting ontab serve on one PostgreSQL (:18091) and on the Citus coordinator (:18092)"
serve single "$single" 18091
single_server=${pids[-1]}
serve citus "$coordinator" 18092
citus_server=${pids[-1]}
single_probes=(--cpu-tree "postgres=$(postmaster "$single")")
citus_probes=()
for node in "${nodes[@]}"; do citus_probes+=(--cpu-tree "postgres_${node#*:}=$(postmaster "$node")"); done
clock_ticks=$(getconf CLK_TCK 2>/dev/null || echo 100)

# name clients round where(single|citus) scenario args...
: >"$work/runs.tsv"
run() {
    local name=$1 c=$2 r=$3 where=$4 scenario=$5; shift 5
    local port=18091 server=$single_server probes=("${single_probes[@]}")
    if [ "$where" = citus ]; then port=18092; server=$citus_server; probes=("${citus_probes[@]}"); fi
    local tag=$name.$where.c$c.r$r
    step "$scenario on $where ($c clients, $DURATION, round $r)"
    "$load" --scenario "$scenario" --base-url "http://127.0.0.1:$port" --clients "$c" \
        --duration "$DURATION" --warmup "$WARMUP" --wait-ready 120s --json \
        --cpu-pid "server=$server" "${probes[@]}" --clock-ticks "$clock_ticks" "$@" \
        >"$work/$tag.json" 2>"$work/$tag.err" || { cat "$work/$tag.err" >&2; die "$tag failed"; }
    jq -e .ok "$work/$tag.json" >/dev/null || { cat "$work/$tag.err" >&2; die "$tag: not ok"; }
    jq -r --arg name "$name" --arg where "$where" --arg c "$c" --arg r "$r" '
        ([.ops | to_entries[] | select(.key | test("^purchase")) | .value.accepted] | add // 0) as $sales
        | ([.cpu_ms | to_entries[] | select(.key | startswith("postgres")) | .value] | add) as $pg
        | [$name, $where, $c, $r, .per_s, .ops.purchase.latency_ms.p50, .ops.purchase.latency_ms.p99,
           (if $sales > 0 then ($pg * 1000 / $sales | round) else "-" end),
           (if $sales > 0 then (.cpu_ms.server * 1000 / $sales | round) else "-" end)] | @tsv' \
        "$work/$tag.json" >>"$work/runs.tsv"
    tail -1 "$work/runs.tsv" | awk -F'\t' '{ printf "  %s/s, p50 %s ms, p99 %s ms, PostgreSQL %s µs and server %s µs CPU per purchase\n", $5, $6, $7, $8, $9 }' >&2
}

for c in "${client_counts[@]}"; do
    for r in $(seq "$ROUNDS"); do
        # Alternating, so a noisy minute hits both alike.
        run uncontended "$c" "$r" single uncontended --customers "$CUSTOMERS" --products "$PRODUCTS"
        run uncontended "$c" "$r" citus uncontended --customers "$CUSTOMERS" --products "$PRODUCTS"
        run hot-product "$c" "$r" single hot-product
        run hot-product "$c" "$r" citus hot-product
    done
done

audits=""
for where in single citus; do
    node=$single
    [ "$where" = citus ] && node=$coordinator
    step "ontab audit on $where"
    if DATABASE_URL=$(url "$node" ontab_bench) "$ontab" audit >"$work/audit.$where" 2>&1; then
        audits+="$where: $(tail -1 "$work/audit.$where"); "
    else
        cat "$work/audit.$where" >&2
        die "ontab audit failed on $where"
    fi
done

step "results"
echo "| scenario | clients | round | one PostgreSQL: purchases/s, p50 / p99 ms, PG CPU µs | Citus (${#nodes[@]} nodes): purchases/s, p50 / p99 ms, PG CPU µs (all nodes) | Citus / one |"
echo "|---|---:|---:|---|---|---:|"
awk -F'\t' '
    $2 == "single" { s[$1 FS $3 FS $4] = $0 }
    $2 == "citus"  { k = $1 FS $3 FS $4; split(s[k], a, FS)
                     printf "| %s | %s | %s | %s, %s / %s, %s | %s, %s / %s, %s | %.2f× |\n",
                            $1, $3, $4, a[5], a[6], a[7], a[8], $5, $6, $7, $8, $5 / a[5] }' "$work/runs.tsv"
echo
echo "audits: $audits"
