#!/usr/bin/env bash
# demo.sh — `make demo`: the whole pipeline on the local stack in one go.
#
# Starts the stack, generates January 2023 (DEMO_EVENTS events, default
# 300000) over the real devices in data/devices.csv, loads events and
# devices into Kafka as Avro, plus a sample of user profile changes
# (scripts/gen_dims.py: out of order, repeated, with tombstones), runs the
# processor until it has caught up, and prints what landed in PostgreSQL,
# including a few dimension rows with their history, and writes the month's HTML report
# (.stack/demo/report.html). The demo keeps to its own topics
# (demo.*), Redis prefix (demo) and database (activity_demo), reset on
# every run, so it can be repeated and never touches other data.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
N=${DEMO_EVENTS:-300000}
ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" up
eval "$("$ROOT/scripts/stack.sh" env)"
DB=activity_demo
PG=${ACTIVITY_PG_DSN%/*}/$DB
FLAGS=(--events-topic demo.web_events --devices-topic demo.devices
    --profiles-topic demo.user_profiles --dlq-topic demo.dlq --redis-prefix demo --pg-dsn "$PG")
PROFILE_CHANGES=${DEMO_PROFILE_CHANGES:-20000}
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

step "generating $PROFILE_CHANGES user profile changes (shuffled, repeated, with tombstones)"
python3 "$ROOT/scripts/gen_dims.py" --out "$WORK/dims" --devices 1 --users 4000 \
    --profile-changes "$PROFILE_CHANGES" --parts 1 --seed 3
# The real devices carry no updated_at; here they are valid from the month's start.
awk 'NR == 1 { print $0 ",updated_at"; next } { print $0 ",2023-01-01 00:00:00" }' "$DEVICES" \
    >"$WORK/devices.csv"

step "loading devices, events and user profiles into Kafka (Avro, Confluent framing)"
"$ROOT/bin/activity" load "${FLAGS[@]}" --topic demo.devices "$WORK/devices.csv"
"$ROOT/bin/activity" load "${FLAGS[@]}" --topic demo.web_events "$WORK/events.csv"
"$ROOT/bin/activity" load "${FLAGS[@]}" --topic demo.user_profiles "$WORK/dims/profiles.1.jsonl"

step "activity run --until-caught-up (dim_users tracks name and address; title and contact are type 1)"
"$ROOT/bin/activity" run "${FLAGS[@]}" --group demo --until-caught-up \
    --dim-users-track first_name,last_name,street,city,state,country,zip

step "what landed in PostgreSQL ($PG)"
PGTZ=UTC psql -X "$PG" <<'SQL'
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
\echo host_daily_uniques: a postgresql-hll sketch per (host, day); uniques over any range in SQL
SELECT host, count(*) AS days,
       round(#hll_union_agg(users)) AS january_uniques,
       round(#hll_union_agg(users) FILTER (WHERE day < '2023-01-08')) AS first_week_uniques,
       sum(octet_length(users::text::bytea)) AS sketch_bytes
FROM host_daily_uniques WHERE day >= '2023-01-01' AND day < '2023-02-01'
GROUP BY host ORDER BY january_uniques DESC, host LIMIT 5;
\echo user_devices_cumulated: per user and browser, with the datelist as a bit integer
SELECT user_id, browser_type, month_start, device_activity_datelist[1:4] AS latest_days,
       datelist_int, lpad(datelist_int::bit(31)::text, 31, '0') AS days_31_to_1
FROM user_devices_cumulated ORDER BY cardinality(device_activity_datelist) DESC, user_id LIMIT 5;
\echo dim_devices: one version per real device so far
SELECT device_sk, device_id, browser_type, os_type, device_type, valid_from, valid_to, is_current
FROM dim_devices ORDER BY device_id LIMIT 3;
\echo dim_users: the history of two users (one of them deleted by a tombstone, then back)
WITH picked AS (
    (SELECT user_id FROM dim_users GROUP BY user_id HAVING count(*) BETWEEN 3 AND 5
     ORDER BY user_id LIMIT 1)
    UNION ALL
    (SELECT d.user_id FROM dim_users d
     WHERE NOT d.is_current
       AND NOT EXISTS (SELECT 1 FROM dim_users n WHERE n.user_id = d.user_id
                       AND n.valid_from = d.valid_to)
       AND EXISTS (SELECT 1 FROM dim_users n WHERE n.user_id = d.user_id
                   AND n.valid_from > d.valid_to)
     ORDER BY d.user_id LIMIT 1))
SELECT user_sk, user_id, first_name || ' ' || last_name AS name, title, city, country,
       contact_value, valid_from::timestamp(0) AS valid_from, valid_to::timestamp(0) AS valid_to,
       is_current
FROM dim_users WHERE user_id IN (SELECT user_id FROM picked) ORDER BY user_id, valid_from;
SELECT (SELECT count(*) FROM host_activity_reduced) AS host_month_rows,
       (SELECT count(*) FROM hosts_cumulated) AS hosts_cumulated_rows,
       (SELECT count(*) FROM user_devices_cumulated) AS user_device_rows,
       (SELECT count(*) FROM dim_devices) AS dim_device_rows,
       (SELECT count(*) FROM dim_users) AS dim_user_rows,
       (SELECT count(DISTINCT user_id) FROM dim_users) AS users,
       (SELECT count(*) FROM dim_users WHERE is_current) AS current_users;
SQL
step "activity report --month 2023-01 --html $WORK/report.html (charts; the text report: without --html)"
"$ROOT/bin/activity" report --pg-dsn "$PG" --month 2023-01 --html "$WORK/report.html"
echo
echo "Explore further:  psql $PG"
