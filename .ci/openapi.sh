#!/usr/bin/env bash
# The OpenAPI document, checked the way an integrator uses it (issue 12):
# starts `ontab serve` on a scratch database, downloads /openapi.json, and
#   a. lints it: openapi-spec-validator, Redocly (`recommended`) and Spectral
#      (`spectral:oas`), zero errors allowed;
#   b. generates a Python client (openapi-python-client), installs it, and
#      runs clients/python/walk.py against the server, every request and
#      response checked against the document (openapi-core);
#   c. generates TypeScript types (openapi-typescript), compiles
#      clients/ts/src/walk.ts with `tsc --strict` and runs it with node.
#
#   bash .ci/openapi.sh ['host=127.0.0.1 port=5432 user=postgres']
#
# $1 is a PostgreSQL superuser (key=value or postgres:// URL); a scratch
# database is created there and dropped at the end. Tools install under
# ~/.cache/ontab-ci-tools (two venvs, outside the checkout so that CI's
# clean clones on one machine reuse them: installing them took 4 min) and
# into the node_modules of .ci/openapi and clients/ts (`npm ci`, from npm's
# cache), pinned, from the registries only, and are reused while their pins
# do not change.
#
# ONTAB_OPENAPI_FILE=path: lint, generate and validate from that file instead
# of the served document (the server still answers the walks). For trying a
# document edited by hand; CI leaves it unset.
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${1:-host=127.0.0.1 port=5432 user=postgres}
TOOLS=${XDG_CACHE_HOME:-$HOME/.cache}/ontab-ci-tools
LINT=.ci/openapi
TS=clients/ts
DB=ontab_openapi_$$_$RANDOM
started=$SECONDS
current="setup"
step() {
    current=$*
    printf '\n==> openapi: %s (%ss)\n' "$*" "$((SECONDS - started))"
}

work=$(mktemp -d -t ontab-openapi.XXXXXX)
server=""
database_created=""
# conninfo DBNAME: $PG pointed at another database.
conninfo() {
    case $PG in
        postgres://* | postgresql://*)
            local rest=${PG#*://}
            printf '%s://%s/%s' "${PG%%://*}" "${rest%%[/?]*}" "$1"
            ;;
        *) printf '%s dbname=%s' "$PG" "$1" ;;
    esac
}
finish() {
    local status=$?
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    if [ -n "$database_created" ]; then
        psql -qAtX "$(conninfo postgres)" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [ "$status" -ne 0 ]; then
        # The server's side of a failed walk or start; nothing to do with a lint.
        if [ -s "$work/serve.log" ] && [[ $current != lint* ]]; then
            echo "--- last lines of the server's log" >&2
            tail -20 "$work/serve.log" >&2
        fi
        printf '\nopenapi: FAILED at step "%s" (exit %s, after %ss)\n' "$current" "$status" "$((SECONDS - started))" >&2
    else
        printf '\nopenapi: every check passed in %ss\n' "$((SECONDS - started))"
    fi
    rm -rf "$work"
}
trap finish EXIT

# Stamps: a tool set is reinstalled only when its pins (or the interpreter) change.
fresh() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# pip_into VENV ARGS...: the machine's pip, installing into VENV. The venvs
# get no pip of their own (ensurepip costs ~10 s each), and nothing is
# byte-compiled ahead: these tools import a fraction of what they install.
pip_into() {
    local dir=$1
    shift
    python3 -m pip --python "$dir/bin/python" install --quiet --no-compile --disable-pip-version-check "$@"
}

# venv DIR REQUIREMENTS: a venv with exactly those pins.
venv() {
    local dir=$1 requirements=$2 stamp
    stamp=$( (python3 --version; cat "$requirements") | sha256sum | cut -c1-16)
    fresh "$dir/.ci-stamp" "$stamp" && return 0
    rm -rf "$dir"
    python3 -m venv --without-pip "$dir"
    pip_into "$dir" -r "$requirements"
    echo "$stamp" >"$dir/.ci-stamp"
}

# node_modules DIR: `npm ci` of DIR's package-lock.json. No install scripts:
# none of these tools needs one, and one dependency's only script reports
# the install to a third party.
node_modules() {
    local dir=$1 stamp
    stamp=$( (node --version; cat "$dir/package-lock.json") | sha256sum | cut -c1-16)
    fresh "$dir/node_modules/.ci-stamp" "$stamp" && return 0
    (cd "$dir" && npm ci --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$stamp" >"$dir/node_modules/.ci-stamp"
}

step "tools (pinned; reinstalled only when the pins change)"
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
    if (a < 20 || (a === 20 && b < 19)) { console.error(`Node.js ${process.versions.node}: @redocly/cli needs >= 20.19`); process.exit(1); }'
# Side by side: mostly waiting on downloads and unpacking.
installs=()
venv "$TOOLS/venv" "$LINT/requirements-clients.txt" &
installs+=($!)
venv "$TOOLS/venv-validator" "$LINT/requirements-validator.txt" &
installs+=($!)
node_modules "$LINT" &
installs+=($!)
node_modules "$TS" &
installs+=($!)
install_failed=""
for pid in "${installs[@]}"; do wait "$pid" || install_failed=yes; done
[ -z "$install_failed" ] || { echo "installing the tools failed (see above)" >&2; exit 1; }
PY=$TOOLS/venv/bin/python
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

step "cargo build --bin ontab"
cargo build --locked --quiet --bin ontab
ontab=${CARGO_TARGET_DIR:-target}/debug/ontab

step "ontab serve on a scratch database ($DB)"
psql -qAtX "$(conninfo postgres)" -c "CREATE DATABASE $DB" >/dev/null
database_created=yes
# A port the kernel just handed out and took back: free unless another
# process grabs it in the next few milliseconds.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
ONTAB_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ONTAB_ADMIN_TOKEN
DATABASE_URL=$(conninfo "$DB") ONTAB_LISTEN=127.0.0.1:$port RUST_LOG=warn \
    "$ontab" serve >"$work/serve.log" 2>&1 &
server=$!
deadline=$((SECONDS + 60))
until curl -fsS "$base/readyz" >/dev/null 2>&1; do
    kill -0 "$server" 2>/dev/null || { echo "ontab serve exited before it was ready" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "ontab serve not ready within 60 s" >&2; exit 1; }
    sleep 0.1
done

step "the document"
spec=$work/openapi.json
if [ -n "${ONTAB_OPENAPI_FILE:-}" ]; then
    echo "ONTAB_OPENAPI_FILE=$ONTAB_OPENAPI_FILE: checking that file, NOT the served document"
    cp "$ONTAB_OPENAPI_FILE" "$work/served.json"
else
    curl -fsS "$base/openapi.json" -o "$work/served.json"
fi
# Indented, so that the linters' line numbers point somewhere.
python3 -m json.tool --indent 2 "$work/served.json" >"$spec"

step "lint: openapi-spec-validator, redocly (recommended), spectral (spectral:oas)"
# Each linter runs even when one before it failed, so that one run shows
# every problem; lint-report.py prints them alike, with JSON pointers.
lint_failed=()
lint() { # NAME FORMAT-FOR-lint-report.py COMMAND...
    local name=$1 format=$2 status=0 report=0
    shift 2
    "$@" >"$work/$name.out" 2>"$work/$name.err" || status=$?
    python3 "$LINT/lint-report.py" "$format" "$work/$name.out" || report=$?
    if [ "$status" -ne 0 ] || [ "$report" -ne 0 ]; then
        lint_failed+=("$name")
        if [ "$report" -eq 0 ]; then
            echo "$name exited $status, with no error in its report; it said:" >&2
            tail -20 "$work/$name.err" >&2
        fi
    fi
}
lint openapi-spec-validator validator \
    "$TOOLS/venv-validator/bin/openapi-spec-validator" --validation-errors all "$spec"
lint redocly redocly \
    "$LINT/node_modules/.bin/redocly" lint --config "$LINT/redocly.yaml" --extends recommended \
    --format json --max-problems 10000 "$spec"
lint spectral spectral \
    "$LINT/node_modules/.bin/spectral" lint --ruleset "$LINT/.spectral.yaml" --fail-severity error \
    --format json --quiet "$spec"
if [ "${#lint_failed[@]}" -gt 0 ]; then
    echo "errors from: ${lint_failed[*]}" >&2
    exit 1
fi

step "python: openapi-python-client generate, install, clients/python/walk.py"
"$TOOLS/venv/bin/openapi-python-client" generate --path "$spec" --config clients/python/generator.yaml \
    --meta setup --fail-on-warning --output-path "$work/python/ontab-client"
# Built with the venv's pinned setuptools, offline.
pip_into "$TOOLS/venv" --no-deps --no-build-isolation --no-index --force-reinstall "$work/python/ontab-client"
"$PY" clients/python/walk.py --base-url "$base" --spec "$spec"

step "typescript: openapi-typescript, tsc --strict, node dist/walk.js"
"$TS/node_modules/.bin/openapi-typescript" "$spec" --output "$TS/src/schema.d.ts"
# The generated types on their own (tsconfig skips .d.ts files, for speed).
"$TS/node_modules/.bin/tsc" --strict --noEmit --skipDefaultLibCheck "$TS/src/schema.d.ts"
rm -rf "$TS/dist"
"$TS/node_modules/.bin/tsc" -p "$TS" --strict --noEmit false
node "$TS/dist/walk.js" "$base"

current="the server's log"
if grep -q 'panicked' "$work/serve.log"; then
    echo "the server panicked:" >&2
    grep -A5 'panicked' "$work/serve.log" >&2
    exit 1
fi
