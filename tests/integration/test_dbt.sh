#!/usr/bin/env bash
# test_dbt.sh — `make dbt-test`: the dbt project (dbt/) against tables the processor wrote.
#
# Two generated months of events over the real devices (with unknown and null devices and
# anonymous events), the devices, and device and profile change histories with tombstones
# (scripts/gen_dims.py) go through the real processor into this test's own database; then
# scripts/dbt.sh installs dbt (pinned, PyPI) if needed and runs `dbt build` (every source
# test) and `dbt source freshness`, which must both pass. To show the tests can fail, it
# then breaks the tables the way each kind of test guards against (an array one day short,
# two overlapping SCD2 versions, a live device without a current version, a users_cumulated
# row missing days of user_devices_cumulated) and expects exactly those tests to fail.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_DBT_EVENTS:-30000}
say "generating $EVENTS events in each of 2023-12 and 2024-01, and change histories"
generate_months "$WORK/events.csv" "$EVENTS" 21 2023-12:4000 2024-01:5000
python3 "$ROOT/scripts/gen_dims.py" --out "$WORK/dims" --devices 500 --users 2000 \
    --profile-changes 8000 --parts 1 --seed 9 --start 2023-12-01 --days 60

"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$WORK/dims/devices.1.csv" 2>/dev/null
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/events.csv" 2>/dev/null
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_PROFILES" "$WORK/dims/profiles.1.jsonl" 2>/dev/null
run_until_caught_up "$WORK/run.log" --flush-interval 1
grep -h "done:" "$WORK/run.log" >&2

counts=$(psql_test -tA -F' ' -c "SELECT (SELECT count(*) FROM users_cumulated),
    (SELECT count(*) FROM dim_devices WHERE NOT is_current),
    (SELECT count(*) FROM dim_users_changes WHERE is_tombstone)")
read -r users closed tombstones <<<"$counts"
say "users_cumulated $users rows, $closed closed device versions, $tombstones profile tombstones"
[ "$users" -gt 1000 ] && [ "$closed" -gt 0 ] && [ "$tombstones" -gt 0 ] ||
    fail "the data does not exercise the tests (users, SCD2 history, tombstones)"

say "dbt build + source freshness"
"$ROOT/scripts/dbt.sh" >"$WORK/dbt.log" 2>&1 || {
    grep -E "FAIL|ERROR|WARN" "$WORK/dbt.log" | tail -30 >&2
    fail "dbt build or source freshness failed (log: $WORK/dbt.log)"
}
summary=$(grep -E "Done\. PASS=" "$WORK/dbt.log" | head -1)
say "dbt build: ${summary#*Done. }"
grep -q "PASS freshness of activity.users_cumulated" "$WORK/dbt.log" ||
    fail "no passing freshness check of users_cumulated in the dbt output"

say "breaking the tables: each broken invariant must fail its dbt test"
psql_test <<'SQL'
-- an array one day short
UPDATE host_activity_reduced SET hit_array = hit_array[1:27]
 WHERE (host, month_start) = (SELECT host, month_start FROM host_activity_reduced
                               ORDER BY host, month_start LIMIT 1);
-- a closed version stretched over its successor
UPDATE dim_devices SET valid_to = valid_to + interval '1 second'
 WHERE device_sk = (SELECT device_sk FROM dim_devices d
                     WHERE NOT is_current AND EXISTS (
                           SELECT 1 FROM dim_devices n WHERE n.device_id = d.device_id
                              AND n.valid_from = d.valid_to)
                     ORDER BY device_sk LIMIT 1);
-- a live user without a current version
UPDATE dim_users SET valid_to = valid_from + interval '1 second', is_current = false
 WHERE user_sk = (SELECT user_sk FROM dim_users WHERE is_current ORDER BY user_sk LIMIT 1);
-- a user month missing a day its devices show
UPDATE users_cumulated u SET datelist_int = u.datelist_int & ~d.datelist_int,
       dates_active = ARRAY(SELECT x FROM unnest(u.dates_active) x
                             WHERE NOT x = ANY (d.device_activity_datelist) ORDER BY x DESC)
  FROM (SELECT * FROM user_devices_cumulated ORDER BY user_id, month_start LIMIT 1) d
 WHERE u.user_id = d.user_id AND u.month_start = d.month_start;
SQL
if "$ROOT/scripts/dbt.sh" test >"$WORK/dbt_broken.log" 2>&1; then
    fail "dbt test passed on broken tables"
fi
for t in source_days_in_month_activity_host_activity_reduced_hit_array \
    source_scd2_no_overlap_activity_dim_devices_device_id \
    source_scd2_one_current_activity_dim_users_ \
    users_cumulated_covers_user_devices; do
    grep -q "FAIL [0-9]* $t" "$WORK/dbt_broken.log" || {
        grep -E "FAIL|ERROR" "$WORK/dbt_broken.log" | tail -20 >&2
        fail "dbt did not fail $t"
    }
done
failed=$(grep -cE "^.{0,40}FAIL [0-9]+ " "$WORK/dbt_broken.log" || true)
say "dbt test on the broken tables: $failed failing tests, the four expected among them"
say "ok"
