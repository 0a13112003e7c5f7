#!/usr/bin/env bash
# Where the server's CPU goes per purchase, counted in instructions by
# valgrind's callgrind: unlike seconds on this shared 2-core machine, the
# count is the same from one run to the next (docs/benchmarks.md,
# "The server's CPU, by callgrind").
#
#   bench/profile.sh                    # uncontended, 16 clients
#   SCENARIO=hot-product bench/profile.sh
#
# Builds ontab and ontab-load (release, with line tables), starts a
# throwaway PostgreSQL, runs `ontab serve` under callgrind with
# instrumentation off, and lets ontab-load switch it on and zero the
# counters when its measured window opens and dump them when it closes
# (--at-window-start/--at-window-end): set-up and warm-up are not counted.
# Then it divides by the purchases accepted in the window and writes
# bench/results/<timestamp>-profile.md: instructions per purchase, by
# crate (exclusive) and the heaviest functions (inclusive and exclusive).
#
# Under callgrind the server runs some 50 times slower, one thread at a
# time, so its background tasks (event sequencer, delivery rounds, metrics)
# are charged to fewer purchases than at full speed: their share here is an
# upper bound.
#
# Environment (defaults in brackets):
#   SCENARIO   [uncontended]  an ontab-load scenario
#   CLIENTS    [16]           ontab-load clients
#   DURATION   [30s]          the counted window
#   WARMUP     [5s]           load before it (not counted)
#   LOAD_ARGS  []             more ontab-load arguments
#   TOP        [40]           functions listed
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=${SCENARIO:-uncontended}
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-5s}
LOAD_ARGS=${LOAD_ARGS:-}
TOP=${TOP:-40}
PORT=18095
PG_PORT=55461

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench/profile.sh: %s\n' "$*" >&2; exit 2; }
# The report on a dump: `write_report DUMP PURCHASES RESPONSES TITLE` on stdout.
write_report() {
    local dump=$1 purchases=$2 responses=$3 title=$4 total
    total=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
    annotate() { callgrind_annotate --auto=no --threshold=100 "$@" "$dump" 2>/dev/null; }
    per() { awk -v n="$purchases" -v top="$1" '/^ *[0-9,]+ / && shown < top {
        ir = $1; gsub(",", "", ir); $1 = ""; sub(/^ +\([^)]*\) +/, ""); printf "%10d  %s\n", ir / n, substr($0, 1, 170); shown++ }'; }
    echo "$title"
    echo
    echo "In the window: $responses responses, $purchases purchases accepted, $total instructions:"
    echo "**$((total / purchases)) instructions per purchase** (every thread of the server, background tasks included)."
    echo
    echo "## By crate (exclusive: instructions spent in the crate's own code), per purchase"
    echo
    echo "| crate | instructions per purchase | share |"
    echo "|---|---:|---:|"
    # A function's crate: the first path segment of its symbol, past any
    # \`<\` of a trait impl; C functions (libc, the allocator's C) by file.
    annotate --inclusive=no | awk '
        /^ *[0-9,]+ \(/ && !/PROGRAM TOTALS/ {
            ir = $1; gsub(",", "", ir)
            sym = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", sym); sub(/ \[[^]]*\]$/, "", sym)
            file = sym; sub(/:.*/, "", file); fn = substr(sym, length(file) + 2)
            name = fn; sub(/^[<&* ]+/, "", name); sub(/[ (].*/, "", name)
            crate = name; sub(/::.*/, "", crate)
            if (name !~ /::/ || crate == "") { crate = file; sub(/.*\//, "", crate); crate = "C: " crate }
            by[crate] += ir
        }
        END { for (c in by) printf "%s\t%d\n", c, by[c] }' | sort -t$'\t' -k2,2nr | awk 'NR <= 25' |
        awk -F'\t' -v n="$purchases" -v total="$total" '{ printf "| %s | %d | %.1f %% |\n", $1, $2 / n, 100 * $2 / total }'
    echo
    echo "## ontab's own frames, inclusive (with what they call), per purchase"
    echo
    echo "Where the request's time goes, layer by layer: each frame's cost includes the frames it awaits."
    echo
    echo '```'
    annotate --inclusive=yes | grep -E '\) +src/' | per 40
    echo '```'
    echo
    echo "## Heaviest functions, inclusive, per purchase"
    echo
    echo '```'
    annotate --inclusive=yes | per "$TOP"
    echo '```'
    echo
    echo "## Heaviest functions, exclusive, per purchase"
    echo
    echo '```'
    annotate --inclusive=no | per "$TOP"
    echo '```'
}

# Only a report, on a dump written before:
#   bench/profile.sh --report DUMP PURCHASES RESPONSES [TITLE]
if [ "${1:-}" = --report ]; then
    [ $# -ge 4 ] || die "usage: bench/profile.sh --report DUMP PURCHASES RESPONSES [TITLE]"
    write_report "$2" "$3" "$4" "${5:-# Server instructions per purchase (callgrind)}"
    exit 0
fi
command -v valgrind >/dev/null || die "needs valgrind (Debian package valgrind)"
command -v callgrind_annotate >/dev/null || die "needs callgrind_annotate (Debian package valgrind)"
command -v jq >/dev/null || die "needs jq"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -x "$pg_bin/initdb" ] || die "needs PostgreSQL's server binaries (Debian package postgresql)"

step "building ontab and ontab-load (release)"
cargo build --release --workspace --bins --quiet
target_dir=${CARGO_TARGET_DIR:-target}
ontab=$(pwd)/$target_dir/release/ontab
load=$(pwd)/$target_dir/release/ontab-load

work=$(mktemp -d /tmp/ontab-profile.XXXXXX)
cluster=""
server_pid=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    [ -n "$cluster" ] && { as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$cluster"; }
    rm -rf "$work"
}
trap cleanup EXIT

step "starting a throwaway PostgreSQL (:$PG_PORT)"
cluster=$(mktemp -d /tmp/ontab-profile-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$cluster"
as_pg "$pg_bin/initdb" -D "$cluster/data" -U postgres --auth=trust >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $cluster -c max_connections=200" start >/dev/null
database_url="host=127.0.0.1 port=$PG_PORT user=postgres dbname=ontab_profile"
psql -qX "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" -c "CREATE DATABASE ontab_profile" >/dev/null
"$ontab" migrate --database-url "$database_url" >/dev/null

step "starting ontab serve under callgrind (instrumentation off until the window)"
ONTAB_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ONTAB_ADMIN_TOKEN
out=$work/callgrind.out
DATABASE_URL=$database_url ONTAB_LISTEN=127.0.0.1:$PORT ONTAB_WEBHOOK_ALLOW_PRIVATE=true RUST_LOG=warn \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$ontab" serve >"$work/serve.log" 2>&1 &
server_pid=$!

step "ontab-load --scenario $SCENARIO ($CLIENTS clients, $WARMUP warm-up, $DURATION counted)"
# shellcheck disable=SC2086 # LOAD_ARGS is a list of arguments
"$load" --scenario "$SCENARIO" --base-url "http://127.0.0.1:$PORT" --clients "$CLIENTS" \
    --duration "$DURATION" --warmup "$WARMUP" --wait-ready 300s --request-timeout 120s --json \
    --at-window-start "callgrind_control --instr=on $server_pid >/dev/null && callgrind_control --zero $server_pid >/dev/null" \
    --at-window-end "callgrind_control --dump=window $server_pid >/dev/null && callgrind_control --instr=off $server_pid >/dev/null" \
    $LOAD_ARGS >"$work/load.json" 2>"$work/load.err" || { cat "$work/load.err" "$work/serve.log" >&2; die "ontab-load failed"; }
jq -e .ok "$work/load.json" >/dev/null || { cat "$work/load.err" >&2; die "the run's audit failed"; }
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
server_pid=""

# The dump named "window" is the first numbered part (callgrind.out.1);
# the one written at exit (instrumentation off) holds nothing of the window.
dump=$(grep -l '^desc: Trigger: Client Request: window\|^desc: Trigger: .*window' "$out".* 2>/dev/null | head -1 || true)
[ -n "$dump" ] || dump=$(ls "$out".* 2>/dev/null | sort -V | head -1 || true)
[ -n "$dump" ] && [ -s "$dump" ] || die "callgrind wrote no dump for the window"

purchases=$(jq '[.ops | to_entries[] | select(.key | test("^(purchase|capture)")) | .value.accepted] | add // 0' "$work/load.json")
responses=$(jq '[.ops[] | .responses] | add // 0' "$work/load.json")
[ "$purchases" -gt 0 ] || die "no purchase was accepted in the window"

stamp=$(date -u +%Y%m%dT%H%MZ)
mkdir -p bench/results
report=bench/results/$stamp-profile.md
write_report "$dump" "$purchases" "$responses" "# Server instructions per purchase (callgrind), $stamp

Scenario \`$SCENARIO\`, $CLIENTS clients, $DURATION counted after $WARMUP of warm-up; commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (dirty)').
Reproduce: \`SCENARIO=$SCENARIO CLIENTS=$CLIENTS DURATION=$DURATION bench/profile.sh\`" >"$report"
cp "$dump" "bench/results/$stamp-profile.callgrind" 2>/dev/null || true
cat "$report"
echo >&2
echo "bench/profile.sh: wrote $report (and the raw dump beside it, for callgrind_annotate or kcachegrind)" >&2
