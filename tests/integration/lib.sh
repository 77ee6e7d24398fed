# lib.sh — shared setup for integration tests against the real local stack.
#
# Each test gets its own topics, Redis key prefix and PostgreSQL database
# (named after a run id), so tests never see each other's data and a rerun
# starts clean. Sourced by tests/integration/test_*.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
ACTIVITY=$ROOT/bin/activity
eval "$("$ROOT/scripts/stack.sh" env)"
RUN_ID=${RUN_ID:-$(date +%s)$$}
T_EVENTS=it.$RUN_ID.events
T_DEVICES=it.$RUN_ID.devices
T_DLQ=it.$RUN_ID.dlq
PREFIX=it$RUN_ID
DB=it_$RUN_ID
WORK=$(mktemp -d /tmp/activity-it.XXXXXX)
PG_ADMIN_DSN=$ACTIVITY_PG_DSN
export ACTIVITY_PG_DSN=${ACTIVITY_PG_DSN%/*}/$DB
TOPIC_FLAGS=(--events-topic "$T_EVENTS" --devices-topic "$T_DEVICES" --dlq-topic "$T_DLQ" --redis-prefix "$PREFIX")

say() { echo "[$(basename "$0" .sh)] $*" >&2; }
fail() {
    say "FAIL: $*"
    exit 1
}

psql_test() { psql -X -q -v ON_ERROR_STOP=1 "$ACTIVITY_PG_DSN" "$@"; }

cleanup() {
    local rc=$?
    rm -rf "$WORK"
    "$ROOT/scripts/redis_drop.sh" "$PREFIX" 2>/dev/null || true
    psql -X -q "$PG_ADMIN_DSN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    exit $rc
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 "$PG_ADMIN_DSN" -c "CREATE DATABASE $DB" >/dev/null

# Loads the raw events and devices into PostgreSQL and computes the
# expected tables with plain SQL (reference.sql).
load_reference() {
    local events_csv=$1 devices_csv=$2
    psql_test <<SQL
CREATE TABLE raw_events(url text, referrer text, user_id bigint, device_id bigint, host text, event_time timestamp);
CREATE TABLE raw_devices(device_id bigint, browser_type text, os_type text, device_type text);
\copy raw_events FROM '$events_csv' CSV HEADER
\copy raw_devices FROM '$devices_csv' CSV HEADER
SQL
    psql_test -f "$ROOT/tests/integration/reference.sql" >/dev/null
}

# Compares the sink tables with the expected ones; fails the test on any
# difference (compare.sql raises).
compare_tables() {
    psql_test -f "$ROOT/tests/integration/compare.sql" || fail "sink tables differ from the reference"
}

# Number of records in a topic (sum of high watermarks minus low).
topic_count() {
    kcat -b "$ACTIVITY_KAFKA_BROKERS" -C -t "$1" -e -q -f '%o\n' 2>/dev/null | wc -l
}
