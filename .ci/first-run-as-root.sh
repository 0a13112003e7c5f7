#!/usr/bin/env bash
# The README's first command, run the way a new user runs it on a fresh
# machine as root (a container, a cloud VM): clone into a home directory of
# mode 0700 (like /root), `cd` there, `cargo run --release -- serve` with no
# DATABASE_URL and no --data-dir, create a business with the printed curl,
# stop it; then start again and find the business's key still working.
# The private PostgreSQL runs as `postgres`, which cannot enter that home:
# this once failed with "cannot reach …/.ontab".
#
#   bash .ci/first-run-as-root.sh            # the README's release build
#   PROFILE=debug bash .ci/first-run-as-root.sh   # reuse CI's debug build
#
# The clone is of the committed HEAD (uncommitted changes are not in it).
# It builds into this checkout's target directory (CARGO_TARGET_DIR), so
# only ontab itself is compiled again, not its dependencies. As non-root the
# same steps run, and the data stays in the clone's ./.ontab.
set -euo pipefail
checkout=$(cd "$(dirname "$0")/.." && pwd)
PROFILE=${PROFILE:-release}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$checkout/target}
step() { printf '\n==> %s\n' "$*"; }

# mktemp -d makes the directory 0700: a stand-in for root's home.
home=$(mktemp -d "${TMPDIR:-/tmp}/ontab-first-run-home.XXXXXX")
log=$home/serve.log
server=""
data_dir=""
stop_server() {
    [ -n "$server" ] || return 0
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
}
cleanup() {
    stop_server
    # A server killed before it could stop its PostgreSQL leaves it running.
    for data in "$data_dir/data" "$home/ontab/.ontab/data"; do
        [ -f "$data/postmaster.pid" ] || continue
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
        pg_ctl=${pg_bin:+$pg_bin/}pg_ctl
        if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$pg_ctl" -D "$data" -m fast stop >/dev/null || true
        else "$pg_ctl" -D "$data" -m fast stop >/dev/null || true; fi
    done
    if [ -n "$data_dir" ]; then
        rm -rf "$data_dir"
        rmdir "$(dirname "$data_dir")" 2>/dev/null || true   # if no other checkout uses it
    fi
    rm -rf "$home"
}
trap cleanup EXIT

step "git clone into $home/ontab (home mode $(stat -c %a "$home"), as uid $(id -u))"
git clone --quiet --no-hardlinks "$checkout" "$home/ontab"
git -C "$home/ontab" checkout --quiet "$(git -C "$checkout" rev-parse HEAD)"
cd "$home/ontab"
if [ "$PROFILE" = release ]; then profile_flag=--release; else profile_flag=; fi
cargo build $profile_flag --locked --quiet --bin ontab

# `cargo run` execs ontab in place, so $! is the server itself. Port 0: CI
# may have something on 8080; the address is read from the welcome line.
serve() {
    : >"$log"
    env -u DATABASE_URL -u ONTAB_DATA_DIR -u ONTAB_ADMIN_TOKEN -u ONTAB_LOG_FORMAT \
        ONTAB_LISTEN=127.0.0.1:0 RUST_LOG=warn \
        cargo run $profile_flag --locked --quiet -- serve >"$log" 2>&1 &
    server=$!
    for _ in $(seq 1200); do
        grep -q "admin token is" "$log" && break
        kill -0 "$server" 2>/dev/null || { cat "$log"; echo "FAILED: ontab serve exited"; exit 1; }
        sleep 0.1
    done
    grep -q "admin token is" "$log" || { cat "$log"; echo "FAILED: no welcome after 120 s"; exit 1; }
    cat "$log"
    base=$(sed -n 's/^ontab listening on //p' "$log")
    admin=$(sed -n "s/.*this run's admin token is //p" "$log")
    notice=$(grep '^ontab: ' "$log" || true)
    found=$(printf '%s' "$notice" | sed -n 's/.*keeps its data in \([^ ]*\) (.*/\1/p')
    if [ -n "$found" ]; then data_dir=$found; fi
}

step "first run: cargo run $profile_flag -- serve"
serve
first_notice=$notice
if [ "$(id -u)" = 0 ] && [ -z "$first_notice" ]; then
    echo "FAILED: as root in a 0700 home, no notice of where the data went"; exit 1
fi
created=$(curl -fsS -X POST "$base/v1/businesses" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"name": "Acme", "currency": "USD"}')
echo "$created"
key=$(printf '%s' "$created" | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
[ -n "$key" ] || { echo "FAILED: no API key in the answer"; exit 1; }
stop_server

step "second run: the same data directory, the business still there"
serve
[ "$notice" = "$first_notice" ] || { echo "FAILED: the notice changed: '$first_notice' then '$notice'"; exit 1; }
curl -fsS "$base/v1/customers" -H "Authorization: Bearer $key" >/dev/null \
    || { echo "FAILED: the first run's API key is unknown after a restart"; exit 1; }
stop_server
step "first run as uid $(id -u): OK${data_dir:+ (data in $data_dir)}"
