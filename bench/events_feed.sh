#!/usr/bin/env bash
# The event feed stays flat with history: reads of 200 events at the start
# of a 1,000,000-event feed cost what reads at its end cost.
#
#   bench/events_feed.sh
#
# Creates a fresh database on BENCH_PG, migrates it, starts `ontab serve`,
# creates a business over HTTP, bulk-loads EVENTS sequenced events into it
# with SQL (each with a ~300-byte payment entry as data, as the feed
# stores them), then times GET /v1/events?after=N&limit=200 over HTTP at the
# first page, the middle and the last page, REPEAT times each, interleaved,
# and prints the medians and the last/first ratio. Also pages through the
# last 20,000 events with next_after, as a reader catching up does.
#
# Environment (defaults in brackets):
#   BENCH_PG   [postgres://postgres@127.0.0.1:5432] superuser URL, no database
#   EVENTS     [1000000]  events bulk-loaded
#   REPEAT     [200]      timed reads per position
#   BENCH_PORT [18091]    where ontab listens
#   ONTAB_BIN  [target/release/ontab, built if missing] the server binary
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
EVENTS=${EVENTS:-1000000}
REPEAT=${REPEAT:-200}
BENCH_PORT=${BENCH_PORT:-18091}
ONTAB_BIN=${ONTAB_BIN:-target/release/ontab}
DB=ontab_bench_events
ADMIN=bench-events-admin-token

if [ ! -x "$ONTAB_BIN" ]; then
    cargo build --release --locked --bin ontab
fi
psql "$BENCH_PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
url="$BENCH_PG/$DB?sslmode=disable"
"$ONTAB_BIN" migrate --database-url "$url" >/dev/null

DATABASE_URL=$url ONTAB_ADMIN_TOKEN=$ADMIN ONTAB_LISTEN=127.0.0.1:$BENCH_PORT \
    "$ONTAB_BIN" serve >/tmp/ontab_bench_events.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$BENCH_PORT/healthz" >/dev/null && break
    sleep 0.1
done

created=$(curl -sf -X POST "http://127.0.0.1:$BENCH_PORT/v1/businesses" \
    -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d '{"name": "Feed"}')
business=$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
key=$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"]["key"])')

# Sequenced events as the sequencer leaves them, in one statement; the
# superuser bypasses row level security. The counter says how far
# sequencing got.
started=$(date +%s)
psql "$url" -q <<SQL
INSERT INTO events (business_id, id, sequence, type, subject_id, created_at, data)
SELECT '$business', gen_random_uuid(), g, 'payment.recorded', '00000000-0000-4000-8000-000000000001',
       now() - make_interval(secs => ($EVENTS - g) / 100.0),
       jsonb_build_object('id', gen_random_uuid(), 'customer_id', '00000000-0000-4000-8000-000000000001',
                          'kind', 'payment', 'amount', -100, 'balance_after', g, 'order_id', NULL,
                          'return_id', NULL, 'due_at', NULL, 'reason', NULL, 'seq', g,
                          'created_at', ontab_json_time(now()))
  FROM generate_series(1, $EVENTS) g;
INSERT INTO event_sequences (business_id, last_sequence) VALUES ('$business', $EVENTS);
VACUUM ANALYZE events;
SQL
echo "loaded $EVENTS events in $(( $(date +%s) - started ))s" >&2

python3 - "$BENCH_PORT" "$key" "$EVENTS" "$REPEAT" <<'PY'
import http.client, json, statistics, sys, time
port, key, events, repeat = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Authorization": f"Bearer {key}"}

def read(after):
    start = time.perf_counter()
    conn.request("GET", f"/v1/events?after={after}&limit=200", headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    page = json.loads(body)
    assert response.status == 200 and len(page["data"]) == 200, (response.status, body[:200])
    assert page["data"][0]["sequence"] == after + 1
    return elapsed

positions = {"first": 0, "middle": events // 2, "last": events - 200}
for after in positions.values():
    for _ in range(5):
        read(after)
times = {name: [] for name in positions}
for _ in range(repeat):
    for name, after in positions.items():
        times[name].append(read(after))
medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
p99 = {name: sorted(values)[int(len(values) * 0.99) - 1] * 1000 for name, values in times.items()}
print(f"| page (200 events) | median ms | p99 ms |")
print(f"|---|---|---|")
for name in positions:
    print(f"| {name} (after={positions[name]}) | {medians[name]:.2f} | {p99[name]:.2f} |")
print(f"\nlast/first median ratio: {medians['last'] / medians['first']:.2f}")

after, pages = events - 20000, 0
start = time.perf_counter()
while after < events:
    conn.request("GET", f"/v1/events?after={after}&limit=200", headers=headers)
    page = json.loads(conn.getresponse().read())
    after = page["next_after"]
    pages += 1
elapsed = time.perf_counter() - start
print(f"caught up through the last 20000 events: {pages} pages in {elapsed:.2f}s ({20000 / elapsed:.0f} events/s)")
PY
