#!/usr/bin/env bash
# Spec-driven fuzzing: Schemathesis generates requests from GET /openapi.json
# (valid and invalid) and checks every answer against the spec: no 5xx,
# documented status, content type and body schema, valid data accepted,
# invalid data refused, plus stateful sequences along the inferred links.
#
#   bash .ci/fuzz.sh                      # CI: MAX_EXAMPLES=25, a few minutes
#   MAX_EXAMPLES=1000 PROFILE=release bash .ci/fuzz.sh    # the long run
#
# Env: FUZZ_PG (PostgreSQL to create a scratch database on, default
# postgres://postgres@127.0.0.1:5432), MAX_EXAMPLES, FUZZ_PORT (18111),
# FUZZ_WORKERS (1; CPython 3.11's ast.parse, used by Hypothesis to describe
# strategies, is not thread-safe and fails at random with more), SEED.
# Exceptions to Schemathesis' expectations, each one a place where the
# contract says otherwise, are in .ci/schemathesis.toml and .ci/fuzz_hooks.py.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
FUZZ_PG=${FUZZ_PG:-postgres://postgres@127.0.0.1:5432}
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
FUZZ_PORT=${FUZZ_PORT:-18111}
FUZZ_WORKERS=${FUZZ_WORKERS:-1}
VENV=${FUZZ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ontab-fuzz-venv}
BASE=http://127.0.0.1:$FUZZ_PORT
DB=ontab_fuzz_$$_$RANDOM
ADMIN=fuzz-admin-$RANDOM$RANDOM

ST=$VENV/bin/st
if ! "$ST" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

# The debug build CI already has (the fuzzer checks answers, not speed);
# PROFILE=release for the long run.
PROFILE=${PROFILE:-debug}
if [ "$PROFILE" = release ]; then cargo build --release --quiet; else cargo build --quiet; fi

psql "$FUZZ_PG/postgres" -qAtc "CREATE DATABASE $DB"
SERVER=
cleanup() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    psql "$FUZZ_PG/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
}
trap cleanup EXIT

LOG=$(mktemp -t ontab-fuzz.XXXXXX.log)
# The fuzzer creates webhook endpoints with URLs of its own making. This
# server must never send to them (test traffic stays on loopback) nor look
# their names up: it delivers nothing (concurrency 0) and takes any
# address without resolving it (allow-private). The guard itself is tested
# in tests/api/webhooks.rs with IP literals, which need no lookup.
DATABASE_URL=$FUZZ_PG/$DB ONTAB_LISTEN=127.0.0.1:$FUZZ_PORT ONTAB_ADMIN_TOKEN=$ADMIN \
    ONTAB_WEBHOOK_CONCURRENCY=0 ONTAB_WEBHOOK_ALLOW_PRIVATE=true \
    "${CARGO_TARGET_DIR:-target}/$PROFILE/ontab" serve >"$LOG" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
    curl -fsS "$BASE/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.1
done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() {
    curl -fsS -X POST "$BASE$1" -H "Authorization: Bearer $2" \
        -H 'Content-Type: application/json' -d "$3"
}
KEY=$(post /v1/businesses "$ADMIN" '{"name":"Fuzz"}' | json '["api_key"]["key"]')
CUSTOMER=$(post /v1/customers "$KEY" '{"name":"Fuzz customer","credit_limit":1000000}' | json '["id"]')
PRODUCT=$(post /v1/products "$KEY" '{"name":"Fuzz product","price":250,"stock":100000}' | json '["id"]')
post /v1/purchases "$KEY" "{\"customer_id\":\"$CUSTOMER\",\"items\":[{\"product_id\":\"$PRODUCT\",\"quantity\":2}]}" >/dev/null

status=0
PYTHONPATH=.ci${PYTHONPATH:+:$PYTHONPATH} SCHEMATHESIS_HOOKS=fuzz_hooks \
    "$ST" --config-file .ci/schemathesis.toml run "$BASE/openapi.json" \
    -H "Authorization: Bearer $KEY" \
    --checks all --exclude-checks unsupported_method \
    --max-examples "$MAX_EXAMPLES" --workers "$FUZZ_WORKERS" \
    ${SEED:+--seed "$SEED"} --no-color || status=$?

if grep -q 'panicked' "$LOG"; then
    echo "server panicked:" >&2
    grep -A5 'panicked' "$LOG" >&2
    status=1
fi
rm -f "$LOG"
exit "$status"
