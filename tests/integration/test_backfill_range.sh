#!/usr/bin/env bash
# test_backfill_range.sh — `activity backfill --from/--to` rebuilds whole
# months beside the live deployment. Three months (2023-12, 2024-01,
# 2024-02, whose edges also touch 2023-11 and 2024-03) are processed by a
# real run; then January's rows are corrupted in PostgreSQL (hits changed,
# rows deleted, a host with no events added) and late January events are
# appended to the topic, unseen by the live group. A backfill of
# [2024-01, 2024-02) must leave January equal to the plain-SQL reference
# over all events (late ones included: read to the end of the topic), leave
# every other month's rows byte for byte as they were, show progress on
# stderr, and move neither the live group's committed offsets nor the live
# prefix's Redis state. Last, a topic whose first records were deleted
# (kafka-delete-records) is refused with a clear message and exit 1, the
# tables untouched.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_BACKFILL_EVENTS:-40000}
say "generating $EVENTS events in each of 2023-12, 2024-01, 2024-02"
for m in 2023-12 2024-01 2024-02; do
    python3 "$ROOT/scripts/gen_events.py" --events "$EVENTS" --month "$m" --seed 7 \
        --users 5000 --out "$WORK/$m.csv"
done
{
    cat "$WORK/2023-12.csv"
    tail -n +2 "$WORK/2024-01.csv"
    tail -n +2 "$WORK/2024-02.csv"
} >"$WORK/events.csv"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/events.csv" 2>/dev/null
load_reference "$WORK/events.csv" "$DEVICES"
run_until_caught_up "$WORK/run.log"
compare_tables -v uv_tolerance_pct=0

# Rows of every month but January, in a stable order, with every column
# (updated_at included: untouched rows are not rewritten).
others_digest() {
    psql_test -tA <<'SQL' | md5sum | cut -d' ' -f1
SELECT * FROM host_activity_reduced WHERE month_start <> '2024-01-01' ORDER BY host, month_start;
SELECT * FROM hosts_cumulated WHERE month_start <> '2024-01-01' ORDER BY host, month_start;
SELECT * FROM user_devices_cumulated WHERE month_start <> '2024-01-01'
 ORDER BY user_id, browser_type, month_start;
SQL
}
group_offsets() {
    ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" kafka-groups --describe --group "it$RUN_ID" \
        2>/dev/null | awk '$2 ~ /^it\./ {print $2, $3, $4}' | sort
}
# A digest of every key of a prefix and its DUMP (one script: SCAN, sort, DUMP).
redis_digest() {
    redis-cli -u "$ACTIVITY_REDIS_URL" EVAL "
local cur, keys = '0', {}
repeat
  local r = redis.call('SCAN', cur, 'MATCH', ARGV[1], 'COUNT', 1000)
  cur = r[1]
  for _, k in ipairs(r[2]) do keys[#keys + 1] = k end
until cur == '0'
table.sort(keys)
local parts = {}
for _, k in ipairs(keys) do parts[#parts + 1] = k .. '=' .. redis.sha1hex(redis.call('DUMP', k)) end
return #keys .. ':' .. redis.sha1hex(table.concat(parts, '\\n'))" 0 "$1:*"
}

n_other=$(psql_test -tA -c "SELECT count(*) FROM host_activity_reduced WHERE month_start <> '2024-01-01'")
[ "$n_other" -gt 0 ] || fail "no rows outside January"
others_before=$(others_digest)
offsets_before=$(group_offsets)
[ -n "$offsets_before" ] || fail "the live group has no committed offsets"
redis_before=$(redis_digest "$PREFIX")
[ "${redis_before%%:*}" -gt 0 ] || fail "the live prefix has no redis keys to compare"

say "corrupting January's rows and appending late January events"
psql_test <<'SQL'
UPDATE host_activity_reduced SET hit_array = array_fill(7::bigint, ARRAY[31])
 WHERE month_start = '2024-01-01' AND host IN (SELECT host FROM host_activity_reduced
       WHERE month_start = '2024-01-01' ORDER BY host LIMIT 5);
DELETE FROM hosts_cumulated WHERE month_start = '2024-01-01'
   AND host IN (SELECT host FROM hosts_cumulated WHERE month_start = '2024-01-01' ORDER BY host LIMIT 3);
DELETE FROM user_devices_cumulated WHERE month_start = '2024-01-01' AND user_id % 10 = 3;
INSERT INTO host_activity_reduced (host, month_start, hit_array, unique_visitors_array)
VALUES ('no-events-here.example', '2024-01-01', array_fill(1::bigint, ARRAY[31]),
        array_fill(1::bigint, ARRAY[31]));
INSERT INTO hosts_cumulated (host, month_start, host_activity_datelist)
VALUES ('no-events-here.example', '2024-01-01', ARRAY['2024-01-02'::date]);
SQL
python3 "$ROOT/scripts/gen_events.py" --events 3000 --month 2024-01 --seed 99 --users 5000 \
    --no-edge-cases --out "$WORK/late.csv"
bad=$(tail -n +2 "$WORK/late.csv" | awk -F, '$NF !~ /^2024-01-/' | wc -l)
[ "$bad" = 0 ] || fail "late events outside January: $bad"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/late.csv" 2>/dev/null
psql_test -c "\\copy raw_events FROM '$WORK/late.csv' CSV HEADER"
psql_test -f "$ROOT/tests/integration/reference.sql" >/dev/null
if psql_test -v uv_tolerance_pct=0 -f "$ROOT/tests/integration/compare.sql" >/dev/null 2>&1; then
    fail "the corrupted tables still equal the reference"
fi

say "backfill --from 2024-01-01 --to 2024-02-01"
"$ACTIVITY" backfill "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --from 2024-01-01 --to 2024-02-01 \
    --progress-interval 0.05 2>"$WORK/backfill.log" || {
    tail -30 "$WORK/backfill.log" >&2
    fail "backfill --from/--to failed"
}
compare_tables -v uv_tolerance_pct=0
[ "$(others_digest)" = "$others_before" ] || fail "rows outside January changed"
[ "$(group_offsets)" = "$offsets_before" ] || fail "the live group's committed offsets moved"
[ "$(redis_digest "$PREFIX")" = "$redis_before" ] || fail "the live prefix's redis state changed"
left=$(redis-cli -u "$ACTIVITY_REDIS_URL" --scan --pattern "$PREFIX#backfill:*" | wc -l)
[ "$left" = 0 ] || fail "$left scratch redis keys left"
schemas=$(psql_test -tA -c "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'activity_backfill%'")
[ "$schemas" = 0 ] || fail "scratch schema left"
progress=$(grep -c 'progress: [0-9]* records.*% of [0-9]* offsets.*records/s, ETA' "$WORK/backfill.log" || true)
[ "$progress" -ge 2 ] || fail "expected progress lines on stderr, got $progress"
grep 'progress:' "$WORK/backfill.log" | tail -1 | grep -q '100.0% of' || fail "last progress not 100%"
grep -q 'backfill of \[2024-01-01, 2024-02-01) done.*host_activity_reduced' "$WORK/backfill.log" ||
    fail "no summary line"
grep -h 'progress:\|backfill of' "$WORK/backfill.log" | tail -3 >&2

say "argument checks"
if "$ACTIVITY" backfill "${TOPIC_FLAGS[@]}" --from 2024-01-15 --to 2024-02-01 2>"$WORK/bad.log"; then
    fail "a non-month-aligned --from was accepted"
fi
grep -q "not the first day of a month" "$WORK/bad.log" || fail "unclear message for 2024-01-15"

say "a range the topic no longer holds is refused"
T_OLD=it.$RUN_ID.old
python3 "$ROOT/scripts/gen_events.py" --events 2000 --month 2024-01 --seed 3 --no-edge-cases \
    --out "$WORK/old.csv"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --partitions 2 --topic "$T_OLD" "$WORK/old.csv" 2>/dev/null
printf '{"version":1,"partitions":[{"topic":"%s","partition":0,"offset":100},{"topic":"%s","partition":1,"offset":100}]}' \
    "$T_OLD" "$T_OLD" >"$WORK/delete.json"
ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" kafka-delete-records --offset-json-file "$WORK/delete.json" >/dev/null
before=$(tables_digest)
set +e
"$ACTIVITY" backfill "${TOPIC_FLAGS[@]}" --events-topic "$T_OLD" --group "it$RUN_ID" \
    --from 2024-01 --to 2024-02 2>"$WORK/old.log"
rc=$?
set -e
[ "$rc" != 0 ] || fail "a backfill of a deleted range exited 0"
grep -q "no longer holds the start of the range" "$WORK/old.log" || {
    tail -5 "$WORK/old.log" >&2
    fail "no clear message for the deleted range"
}
[ "$(tables_digest)" = "$before" ] || fail "the refused backfill changed the tables"
say "ok"
