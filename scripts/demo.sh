#!/usr/bin/env bash
# demo.sh — `make demo`: the whole pipeline on the local stack in one go.
#
# Starts the stack, generates January 2023 (DEMO_EVENTS events, default
# 300000) over the real devices in data/devices.csv, loads events and
# devices into Kafka as Avro, runs the processor until it has caught up,
# and prints what landed in PostgreSQL. The demo keeps to its own topics
# (demo.*), Redis prefix (demo) and database (activity_demo), reset on
# every run, so it can be repeated and never touches other data.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
N=${DEMO_EVENTS:-300000}
ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" up
eval "$("$ROOT/scripts/stack.sh" env)"
DB=activity_demo
PG=${ACTIVITY_PG_DSN%/*}/$DB
FLAGS=(--events-topic demo.web_events --devices-topic demo.devices --dlq-topic demo.dlq
    --redis-prefix demo --pg-dsn "$PG")
DEVICES=$ROOT/../shared/data/devices.csv
[ -f "$ROOT/data/devices.csv" ] && DEVICES=$ROOT/data/devices.csv
WORK=$ROOT/.stack/demo
mkdir -p "$WORK"
step() { printf '\n==> %s\n' "$*"; }

step "resetting the demo's topics, Redis keys and database"
"$ROOT/scripts/stack.sh" kafka-topics --delete --if-exists --topic 'demo\..*' >/dev/null 2>&1 || true
"$ROOT/scripts/redis_drop.sh" demo
psql -X -q "$ACTIVITY_PG_DSN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
# Topic deletion is asynchronous in Kafka; wait until they are gone.
for _ in $(seq 1 30); do
    kcat -b "$ACTIVITY_KAFKA_BROKERS" -L 2>/dev/null | grep -q 'topic "demo\.' || break
    sleep 1
done

step "generating $N events for January 2023 over $(($(wc -l <"$DEVICES") - 1)) real devices"
python3 "$ROOT/scripts/gen_events.py" --events "$N" --month 2023-01 --devices "$DEVICES" \
    --out "$WORK/events.csv"

step "loading devices and events into Kafka (Avro, Confluent framing)"
"$ROOT/bin/activity" load "${FLAGS[@]}" --topic demo.devices "$DEVICES"
"$ROOT/bin/activity" load "${FLAGS[@]}" --topic demo.web_events "$WORK/events.csv"

step "activity run --until-caught-up"
"$ROOT/bin/activity" run "${FLAGS[@]}" --group demo --until-caught-up

step "what landed in PostgreSQL ($PG)"
psql -X "$PG" <<'SQL'
\echo host_activity_reduced: the busiest hosts of January 2023 (first 7 days of each array)
SELECT host, month_start, hit_array[1:7] AS hits_day1_7,
       unique_visitors_array[1:7] AS uniques_day1_7,
       (SELECT sum(h) FROM unnest(hit_array) h) AS month_hits
FROM host_activity_reduced WHERE month_start = '2023-01-01'
ORDER BY month_hits DESC LIMIT 5;
\echo hosts_cumulated: active days, most recent first
SELECT host, month_start, cardinality(host_activity_datelist) AS active_days,
       host_activity_datelist[1:4] AS latest_days
FROM hosts_cumulated ORDER BY active_days, host LIMIT 5;
\echo user_devices_cumulated: per user and browser, with the datelist as a bit integer
SELECT user_id, browser_type, month_start, device_activity_datelist[1:4] AS latest_days,
       datelist_int, lpad(datelist_int::bit(31)::text, 31, '0') AS days_31_to_1
FROM user_devices_cumulated ORDER BY cardinality(device_activity_datelist) DESC, user_id LIMIT 5;
SELECT (SELECT count(*) FROM host_activity_reduced) AS host_month_rows,
       (SELECT count(*) FROM hosts_cumulated) AS hosts_cumulated_rows,
       (SELECT count(*) FROM user_devices_cumulated) AS user_device_rows;
SQL
echo
echo "Explore further:  psql $PG"
