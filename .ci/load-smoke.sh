#!/usr/bin/env bash
# CI smoke of the load generator, so it cannot rot: builds ontab and
# ontab-load, starts `ontab serve` on a scratch database, runs every
# scenario for ~2 s with a few clients at small sizes, and fails on any
# audit violation, any 5xx and any lost connection (--strict); then
# `ontab audit` re-checks everything they stored.
#
#   bash .ci/load-smoke.sh [host:port]   # PostgreSQL superuser on TCP, trust auth
#
# .ci/run passes the server its PgBouncer step used; alone, the default is
# 127.0.0.1:5432, and a throwaway cluster is started when nothing answers.
set -euo pipefail
cd "$(dirname "$0")/.."

pg=${1:-127.0.0.1:5432}
port=${ONTAB_SMOKE_PORT:-18097}
db=ontab_load_smoke
step() { printf '\n==> %s\n' "$*"; }

pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
work=$(mktemp -d /tmp/ontab-load-smoke.XXXXXX)
server_pid=""
cluster=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    psql -qX "postgres://postgres@$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    if [ -n "$cluster" ]; then as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$cluster"; fi
    rm -rf "$work"
}
trap cleanup EXIT

if ! "$pg_bin/pg_isready" -q -h "${pg%:*}" -p "${pg#*:}"; then
    # Not under $work: mktemp makes that root-only, and the cluster runs as postgres.
    cluster=$(mktemp -d /tmp/ontab-load-smoke-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$cluster"
    as_pg "$pg_bin/initdb" -D "$cluster/data" -U postgres --auth=trust >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p 55438 -k $cluster" start >/dev/null
    pg=127.0.0.1:55438
fi
base=postgres://postgres@$pg

step "load smoke: building ontab and ontab-load"
# Debug builds: cargo test has already built most of ontab's; two seconds
# of load need no optimizer.
cargo build --locked -p ontab -p ontab-load
cargo test --locked -p ontab-load
target_dir=${CARGO_TARGET_DIR:-target}

step "load smoke: ontab serve on 127.0.0.1:$port, database $db"
psql -qX "$base/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
ONTAB_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ONTAB_ADMIN_TOKEN
DATABASE_URL=$base/$db ONTAB_LISTEN=127.0.0.1:$port RUST_LOG=warn \
    "$target_dir/debug/ontab" serve >"$work/serve.log" 2>&1 &
server_pid=$!

smoke() { # scenario, extra flags...
    local name=$1; shift
    step "load smoke: $name"
    if ! "$target_dir/debug/ontab-load" --scenario "$name" --base-url "http://127.0.0.1:$port" \
        --clients 4 --duration 2s --wait-ready 60s --strict "$@"; then
        echo "load smoke: $name FAILED; server log:" >&2
        tail -50 "$work/serve.log" >&2
        exit 1
    fi
}
smoke uncontended --customers 20 --products 20
smoke hot-product
smoke sellout --stock 100
smoke hot-customer --credit-limit 5000
smoke mixed --customers 30 --products 30 --tenants 3
smoke history --history-entries 10000 --database-url "$base/$db"
smoke hold-capture --customers 20 --products 20
smoke hold-capture-hot
smoke hot-product-held --pending-holds 100
step "load smoke: ontab audit of $db"
DATABASE_URL=$base/$db "$target_dir/debug/ontab" audit
step "load smoke: every scenario passed its audit"
