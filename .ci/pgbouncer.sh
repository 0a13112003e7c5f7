#!/usr/bin/env bash
# Starts PgBouncer in transaction mode on 127.0.0.1:6432 in front of the
# PostgreSQL at $1 (host:port), for the CI run of the integration tests
# through a pooler. Prints nothing on success; `stop` stops it.
set -euo pipefail
dir=/tmp/ontab-ci-pgbouncer
stop() {
    local pid
    pid=$(cat "$dir/pgbouncer.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || true
    # Gone before a new one starts: it would find the pidfile and refuse.
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$dir/pgbouncer.pid"
}
if [ "${1:-}" = stop ]; then
    stop
    exit 0
fi
# One left by an interrupted run (its script never reached `stop`).
stop
upstream_host=${1%:*}
upstream_port=${1#*:}
command -v pgbouncer >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq pgbouncer >/dev/null
}
mkdir -p "$dir"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=$upstream_host port=$upstream_port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 6432
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
# The harness (postgres) and the servers under test, which log in as
# ontab_test_server, a member of ontab_app alone (tests/api/helpers.rs).
# With trust the passwords go unchecked here; PgBouncer passes them on to
# a PostgreSQL that asks for one.
printf '"postgres" ""\n"ontab_test_server" "ontab-test-server"\n' > "$dir/users.txt"
# PgBouncer refuses to run as root.
if [ "$(id -u)" = 0 ]; then
    chown -R postgres "$dir"
    runuser -u postgres -- pgbouncer -d "$dir/pgbouncer.ini"
else
    pgbouncer -d "$dir/pgbouncer.ini"
fi
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/6432) 2>/dev/null && exit 0
    sleep 0.1
done
echo "pgbouncer did not start; log:" >&2
tail -20 "$dir/pgbouncer.log" >&2
exit 1
