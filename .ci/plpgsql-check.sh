#!/usr/bin/env bash
# Static checks of every PL/pgSQL function of ontab with plpgsql_check:
# unknown columns or tables, wrong types in assignments, unused variables,
# a missing RETURN, and more, including in code paths the tests never take.
#
#   .ci/plpgsql-check.sh [host:port]
#
# Installs the Debian package of the server's major version when missing,
# migrates a scratch database on the PostgreSQL at host:port (default
# 127.0.0.1:5432, user postgres), creates the extension there, and checks
# each function; a trigger function once per table it is a trigger on (its
# NEW and OLD have that table's row type). Exit 1 on any error; warnings
# are printed and do not fail.
set -euo pipefail
cd "$(dirname "$0")/.."

address=${1:-127.0.0.1:5432}
host=${address%:*}
port=${address##*:}
psql_on() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U postgres -d "$db" "$@"; }

major=$(psql_on postgres -Atc "SELECT current_setting('server_version_num')::int / 10000")
if [ -z "$(psql_on postgres -Atc "SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql_check'")" ]; then
    echo "installing postgresql-$major-plpgsql-check"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "postgresql-$major-plpgsql-check" >/dev/null
fi

database=ontab_plpgsql_check_$$_$RANDOM
psql_on postgres -c "CREATE DATABASE $database"
trap 'psql_on postgres -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true' EXIT

cargo run --quiet --locked --bin ontab -- migrate \
    --database-url "host=$host port=$port user=postgres dbname=$database" >/dev/null
psql_on "$database" -c "CREATE EXTENSION plpgsql_check"

# One row per finding: level, function (and table), where, message.
findings=$(psql_on "$database" -At -F $'\t' <<'SQL'
WITH targets AS (
    SELECT p.oid AS fn, t.tgrelid AS rel, t.tgnewtable AS newtable
      FROM pg_proc p
      JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
      JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'public'
      LEFT JOIN (SELECT DISTINCT tgfoid, tgrelid, tgnewtable FROM pg_trigger WHERE NOT tgisinternal) t
             ON t.tgfoid = p.oid
     WHERE p.proname LIKE 'ontab\_%'
)
SELECT coalesce(c.level, 'ok'),
       t.fn::regproc::text || coalesce(' on ' || t.rel::regclass::text, ''),
       coalesce(c.lineno::text, ''),
       coalesce(c.message || coalesce(' (' || c.hint || ')', '') || coalesce(': ' || c.query, ''), '')
  FROM targets t
  LEFT JOIN LATERAL plpgsql_check_function_tb(
           t.fn, coalesce(t.rel, 0), newtable => t.newtable,
           performance_warnings => true, extra_warnings => true, security_warnings => true) c ON true
 ORDER BY 2, 3;
SQL
)

checked=$(printf '%s\n' "$findings" | cut -f2 | sort -u | wc -l)
errors=$(printf '%s\n' "$findings" | awk -F'\t' '$1 == "error"' | wc -l)
printf '%s\n' "$findings" | awk -F'\t' '$1 != "ok" { printf "%s: %s, line %s: %s\n", $1, $2, $3, $4 }'
echo "plpgsql_check: $checked functions (trigger functions per table) checked, $errors errors"
[ "$errors" -eq 0 ]
