#!/usr/bin/env bash
# What one webhook endpoint costs purchase throughput, measured in pairs
# that a noisy machine cannot tilt (docs/benchmarks.md, "An upper bound for
# deliveries without rows").
#
#   bench/pairs.sh                      # no endpoint against one endpoint
#   VARIANT_ONTAB=/tmp/ontab-x VARIANT_SQL=/tmp/x.sql bench/pairs.sh
#
# bench/run.sh runs the scenario with an endpoint right after the one
# without, in the same database: the second meets the first's rows,
# autovacuum and checkpoint, and a shared machine's slow minutes fall on
# either. Here every run gets a throwaway PostgreSQL cluster of its own
# (initdb, `ontab migrate`, `ontab serve`, ontab-load, stopped and
# removed), the arms take turns in an order that rotates each round, and
# the summary gives, per client count, the median of each round's ratio
# to the run without an endpoint beside it.
#
# Arms: `none` (no endpoint), `endpoint` (ontab-load's own receiver on
# 127.0.0.1, as in bench/run.sh's *-webhook scenarios) and, when
# VARIANT_ONTAB or VARIANT_SQL is set, `variant`: an endpoint, served by
# VARIANT_ONTAB (default: this checkout's build) on a database to which
# VARIANT_SQL was applied after migrating (a prototype of a change, say).
#
# Environment (defaults in brackets):
#   SCENARIO       [uncontended]  or hot-product
#   CLIENTS        [16 64]
#   ROUNDS         [3]
#   DURATION       [20s] measured time per run (after WARMUP [2s])
#   CUSTOMERS      [1000] / PRODUCTS [1000]   uncontended sizes
#   VARIANT_ONTAB  []  ontab binary of the variant arm
#   VARIANT_SQL    []  SQL file applied (as the superuser) after migrating
#   PG_OPTS        []  more server options for every cluster
# Writes bench/results/<timestamp>-pairs.md (also printed).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SCENARIO=${SCENARIO:-uncontended}
CLIENTS=${CLIENTS:-16 64}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
CUSTOMERS=${CUSTOMERS:-1000}
PRODUCTS=${PRODUCTS:-1000}
VARIANT_ONTAB=${VARIANT_ONTAB:-}
VARIANT_SQL=${VARIANT_SQL:-}
PG_OPTS=${PG_OPTS:-}
PORT=55997
LISTEN=127.0.0.1:18096

die() { printf 'bench/pairs.sh: %s\n' "$*" >&2; exit 2; }
[[ $SCENARIO =~ ^(uncontended|hot-product)$ ]] || die "SCENARIO is uncontended or hot-product"
read -r -a client_counts <<<"$CLIENTS"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[ -z "$VARIANT_SQL" ] || [ -r "$VARIANT_SQL" ] || die "cannot read VARIANT_SQL $VARIANT_SQL"

echo "==> building ontab and ontab-load (release)" >&2
cargo build --release --locked -p ontab -p ontab-load >&2
target_dir=${CARGO_TARGET_DIR:-target}
ontab=$target_dir/release/ontab
load=$target_dir/release/ontab-load
arms=(none endpoint)
[ -n "$VARIANT_ONTAB$VARIANT_SQL" ] && arms+=(variant)
variant_ontab=${VARIANT_ONTAB:-$ontab}
[ -x "$variant_ontab" ] || die "VARIANT_ONTAB $variant_ontab is not executable"

work=$(mktemp -d)
cluster="" server_pid=""
# Stops this run's server and removes its cluster (after each run, and on exit).
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    [ -n "$cluster" ] && stop_throwaway_cluster "$cluster" && rm -rf "$cluster"
    cluster="" server_pid=""
}
trap 'cleanup; rm -rf "$work"' EXIT
clock_ticks=$(getconf CLK_TCK 2>/dev/null || echo 100)
ONTAB_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ONTAB_ADMIN_TOKEN

# run_arm ARM CLIENTS ROUND: one run on a cluster of its own; appends a row
# arm clients round per_s server_us pg_us client_us lag_p50 lag_p99 ok
run_arm() {
    local arm=$1 c=$2 r=$3 bin=$ontab tag=$1.c$2.r$3 url postmaster
    local args=(--scenario "$SCENARIO")
    [ "$SCENARIO" = uncontended ] && args+=(--customers "$CUSTOMERS" --products "$PRODUCTS")
    [ "$arm" != none ] && args+=(--webhook)
    [ "$arm" = variant ] && bin=$variant_ontab
    cluster=$(mktemp -d /tmp/ontab-pairs-pg.XXXXXX)
    # shellcheck disable=SC2086
    start_throwaway_cluster "$cluster" "$PORT" $PG_OPTS || die "cannot start PostgreSQL"
    postmaster=$(head -1 "$cluster/data/postmaster.pid")
    url=postgres://postgres@127.0.0.1:$PORT
    psql -qtAX "$url/postgres" -c "CREATE DATABASE ontab_pairs" >/dev/null
    DATABASE_URL=$url/ontab_pairs "$bin" migrate >"$work/$tag.migrate" 2>&1 ||
        { cat "$work/$tag.migrate" >&2; die "ontab migrate failed ($tag)"; }
    if [ "$arm" = variant ] && [ -n "$VARIANT_SQL" ]; then
        psql -qtAX -v ON_ERROR_STOP=1 "$url/ontab_pairs" -f "$VARIANT_SQL" >/dev/null ||
            die "VARIANT_SQL failed"
    fi
    DATABASE_URL=$url/ontab_pairs ONTAB_LISTEN=$LISTEN ONTAB_WEBHOOK_ALLOW_PRIVATE=true RUST_LOG=warn \
        "$bin" serve >"$work/$tag.serve.log" 2>&1 &
    server_pid=$!
    wait_ready "http://$LISTEN" "$server_pid" "$work/$tag.serve.log" 60 || die "ontab did not become ready ($tag)"
    echo "==> $arm, $c clients, round $r" >&2
    "$load" --base-url "http://$LISTEN" "${args[@]}" --clients "$c" --duration "$DURATION" \
        --warmup "$WARMUP" --wait-ready 60s --json --cpu-pid "server=$server_pid" \
        --cpu-tree "postgres=$postmaster" --clock-ticks "$clock_ticks" \
        >"$work/$tag.json" 2>"$work/$tag.err" || true
    cleanup
    jq -r --arg arm "$arm" --arg c "$c" --arg r "$r" '
        ([.ops | to_entries[] | select(.key | test("^purchase")) | .value.accepted] | add // 0) as $s
        | def per(x): if $s > 0 and x != null then (x * 1000 / $s * 10 | round / 10) else "-" end;
        [$arm, $c, $r, ($s / .duration_s * 10 | round / 10), per(.cpu_ms.server), per(.cpu_ms.postgres),
         per(.cpu_ms.client), (.facts.webhook.lag_ms.p50 // "-"), (.facts.webhook.lag_ms.p99 // "-"),
         (.ok and ((.facts.webhook // null) == null or .facts.webhook.received >= .facts.webhook.expected))]
        | @tsv' "$work/$tag.json" >>"$work/runs.tsv" ||
        printf '%s\t%s\t%s\t-\t-\t-\t-\t-\t-\tfalse\n' "$arm" "$c" "$r" >>"$work/runs.tsv"
    printf '    %s\n' "$(tail -1 "$work/runs.tsv" | cut -f4-10)" >&2
}

: >"$work/runs.tsv"
for c in "${client_counts[@]}"; do
    for r in $(seq "$ROUNDS"); do
        # Each round starts one arm later than the last.
        for k in $(seq 0 $((${#arms[@]} - 1))); do
            run_arm "${arms[$(((r - 1 + k) % ${#arms[@]}))]}" "$c" "$r"
        done
    done
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/$stamp-pairs.md
{
    echo "# bench/pairs.sh, $stamp"
    echo
    echo "Reproduce: \`SCENARIO=$SCENARIO CLIENTS=\"$CLIENTS\" ROUNDS=$ROUNDS DURATION=$DURATION bench/pairs.sh\`$([ -n "$VARIANT_ONTAB$VARIANT_SQL" ] && echo " with VARIANT_ONTAB=${VARIANT_ONTAB:-(this build)} VARIANT_SQL=${VARIANT_SQL:-(none)}")"
    echo
    echo "Commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations || echo ' (with uncommitted changes)'), PostgreSQL $(psql --version | awk '{print $3}'), $(nproc) cores. Every run on a fresh cluster; CPU in µs per accepted purchase."
    echo
    echo "| arm | clients | round | purchases/s | ratio to none | CPU µs server / PG / client | lag p50 / p99 ms | ok |"
    echo "|---|---:|---:|---:|---:|---|---|---|"
    awk -F'\t' 'NR == FNR { if ($1 == "none") base[$2 "/" $3] = $4; next }
        { b = base[$2 "/" $3]; ratio = (b > 0 && $4 != "-") ? sprintf("%.2f×", $4 / b) : "-"
          printf "| %s | %s | %s | %s | %s | %s / %s / %s | %s / %s | %s |\n", $1, $2, $3, $4, ratio, $5, $6, $7, $8, $9, $10 }' \
        "$work/runs.tsv" "$work/runs.tsv"
    echo
    echo "Medians per client count (the ratio is the median of the rounds' ratios):"
    echo
    echo "| arm | clients | purchases/s | ratio to none | CPU µs PG | CPU µs server |"
    echo "|---|---:|---:|---:|---:|---:|"
    for c in "${client_counts[@]}"; do
        for arm in "${arms[@]}"; do
            awk -F'\t' -v arm="$arm" -v c="$c" '
                function median(a, n,   i, j, t) {
                    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
                NR == FNR { if ($1 == "none" && $2 == c && $4 != "-") base[$3] = $4; next }
                $1 == arm && $2 == c && $4 != "-" {
                    n++; rate[n] = $4; pg[n] = $6; srv[n] = $5
                    if (base[$3] > 0) { m++; ratio[m] = $4 / base[$3] } }
                END { if (n) printf "| %s | %s | %.1f | %s | %.1f | %.1f |\n", arm, c, median(rate, n),
                                    m ? sprintf("%.2f×", median(ratio, m)) : "-", median(pg, n), median(srv, n) }' \
                "$work/runs.tsv" "$work/runs.tsv"
        done
    done
} >"$out"
cat "$out"
awk -F'\t' '$10 != "true" { bad = 1 } END { exit bad }' "$work/runs.tsv" ||
    { echo "bench/pairs.sh: a run failed its audit or lost a webhook (see ok)" >&2; exit 1; }
