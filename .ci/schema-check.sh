#!/usr/bin/env bash
# Holds the migrated schema to docs/schema.sql, the committed dump a reviewer
# reads to see what a migration changed.
#
#   .ci/schema-check.sh [--update] [host:port]
#
# Migrates a fresh database (with `ontab migrate`) on the PostgreSQL at
# host:port (default 127.0.0.1:5432; user postgres, a superuser, so that the
# owners in the dump are stable), dumps it with `pg_dump --schema-only`,
# normalizes the dump and compares it with docs/schema.sql: exit 1 with the
# diff when they differ. --update rewrites docs/schema.sql instead.
#
# Normalized away, because they change from run to run or machine to
# machine rather than with the schema: pg_dump's random \restrict key and
# its version banners. Owners and privileges stay: they are part of what
# the migrations guarantee (who owns the SECURITY DEFINER functions, what
# ontab_app may do).
set -euo pipefail
cd "$(dirname "$0")/.."

update=false
address=127.0.0.1:5432
for arg in "$@"; do
    case $arg in
        --update) update=true ;;
        -*) echo "usage: $0 [--update] [host:port]" >&2; exit 2 ;;
        *) address=$arg ;;
    esac
done
host=${address%:*}
port=${address##*:}
committed=docs/schema.sql

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U postgres -d postgres "$@"; }

# pg_dump of the server's own major version: another major prints the same
# schema differently.
major=$(psql_admin -Atc "SELECT current_setting('server_version_num')::int / 10000")
pg_dump=/usr/lib/postgresql/$major/bin/pg_dump
[ -x "$pg_dump" ] || pg_dump=pg_dump

database=ontab_schema_check_$$_$RANDOM
psql_admin -c "CREATE DATABASE $database"
trap 'psql_admin -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true' EXIT

cargo run --quiet --locked --bin ontab -- migrate \
    --database-url "host=$host port=$port user=postgres dbname=$database" >/dev/null

dump=$(mktemp)
trap 'rm -f "$dump"; psql_admin -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true' EXIT
{
    echo "-- The schema of a freshly migrated ontab database (pg_dump $major --schema-only),"
    echo "-- migrated by the superuser postgres. Written by .ci/schema-check.sh --update;"
    echo "-- CI fails when the migrations no longer produce exactly this."
    "$pg_dump" --schema-only -h "$host" -p "$port" -U postgres "$database" \
        | grep -v -E '^\\(un)?restrict |^-- Dumped (from|by) ' | cat -s
} > "$dump"

if $update; then
    cp "$dump" "$committed"
    echo "wrote $committed"
    exit 0
fi
if [ ! -f "$committed" ]; then
    echo "schema check: $committed is missing; run .ci/schema-check.sh --update and commit it" >&2
    exit 1
fi
if ! diff -u "$committed" "$dump"; then
    echo "schema check: the migrations no longer produce $committed (diff above, - committed, + migrated)." >&2
    echo "If the change is intended: .ci/schema-check.sh --update, and commit the file with the migration." >&2
    exit 1
fi
echo "schema check: the migrated schema is $committed"
