#!/usr/bin/env bash
# test_scd2.sh — dim_devices and dim_users through the real stack, held row for row against
# SCD2 computed by plain SQL over the full change history (scd2_reference.sql).
#
# scripts/gen_dims.py writes 50,000 devices' and 40,000 users' histories (200,000 profile
# changes, plus duplicates, same-instant rivals and tombstones), delivered in time order
# shuffled within a window, a few held back by up to a whole part. The four parts are
# loaded and processed one after another (each run flushes every second), so late changes
# land in histories that earlier flushes already wrote. Then:
#   - the tables equal the reference, row for row (title and contact are type 1 here);
#   - tracking other attributes rebuilds dim_devices from its history, and going back
#     gives the reference again;
#   - replaying every record into fresh Redis state (new key prefix, new group) changes
#     nothing at all: same rows, same surrogate keys, same updated_at.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/scd2_lib.sh"

N_DEVICES=${IT_SCD2_DEVICES:-50000}
N_USERS=${IT_SCD2_USERS:-40000}
N_CHANGES=${IT_SCD2_PROFILE_CHANGES:-200000}
PARTS=4
DIMS=$WORK/dims

say "generating $N_DEVICES devices and $N_CHANGES profile changes of $N_USERS users"
python3 "$ROOT/scripts/gen_dims.py" --out "$DIMS" --devices "$N_DEVICES" --users "$N_USERS" \
    --profile-changes "$N_CHANGES" --parts "$PARTS" --seed 5

run_part() { # name, extra flags...
    local name=$1
    shift
    "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up \
        --flush-interval 1 --dim-users-track "$SCD2_USERS_TRACK" "$@" 2>"$WORK/$name.log" || {
        cat "$WORK/$name.log"
        fail "$name exited non-zero"
    }
    grep "done:" "$WORK/$name.log" >&2
}

for i in $(seq 1 "$PARTS"); do
    say "part $i: loading and processing"
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DIMS/devices.$i.csv" 2>/dev/null
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_PROFILES" "$DIMS/profiles.$i.jsonl" \
        2>/dev/null
    run_part "run$i"
done
flushes=$(cat "$WORK"/run?.log | grep -c "dimension changes in" || true)
[ "$flushes" -ge "$PARTS" ] || fail "expected at least $PARTS flushes with dimension changes, saw $flushes"
grep -q " 0 dead letters" "$WORK/run$PARTS.log" || fail "dead letters in the last run"

say "computing the dimensions with plain SQL over the full history and comparing"
scd2_reference "$DIMS"
compare_dims "after $PARTS parts"
users=$(psql_test -tAc "SELECT count(DISTINCT user_id) FROM dim_users")
versions=$(psql_test -tAc "SELECT count(*) FROM dim_users")
closed=$(psql_test -tAc "SELECT count(*) FROM dim_devices d WHERE NOT is_current
    AND NOT EXISTS (SELECT 1 FROM dim_devices n WHERE n.device_id = d.device_id
                    AND n.valid_from = d.valid_to)")
[ "$users" -gt $((N_USERS * 9 / 10)) ] && [ "$versions" -gt $((users * 2)) ] ||
    fail "too little history: $versions versions of $users users"
[ "$closed" -gt $((N_DEVICES / 1000)) ] || fail "only $closed device versions were closed by a tombstone"

say "tracking browser_type only rebuilds dim_devices from its history"
run_part rebuild1 --dim-devices-track browser_type
bad=$(psql_test -tAc "SELECT count(*) FROM (
    SELECT browser_type, lag(browser_type) OVER w AS prev, lag(valid_to) OVER w AS prev_to,
           valid_from FROM dim_devices WINDOW w AS (PARTITION BY device_id ORDER BY valid_from)) x
    WHERE prev_to = valid_from AND browser_type IS NOT DISTINCT FROM prev")
[ "$bad" = 0 ] || fail "$bad consecutive dim_devices versions share their browser_type"
[ "$(psql_test -tAc "SELECT tracked FROM dim_tracking WHERE dim = 'dim_devices'")" = "{browser_type}" ] ||
    fail "dim_tracking does not record the new tracked set"
run_part rebuild2
compare_dims "after tracking all device attributes again"

say "replaying every record into fresh Redis state changes nothing"
psql_test -c "CREATE TABLE snap_devices AS TABLE dim_devices;
              CREATE TABLE snap_users AS TABLE dim_users;
              CREATE TABLE snap_changes AS SELECT (SELECT count(*) FROM dim_devices_changes) d,
                                                  (SELECT count(*) FROM dim_users_changes) u"
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --redis-prefix "${PREFIX}r" --group "it${RUN_ID}r" --until-caught-up \
    --dim-users-track "$SCD2_USERS_TRACK" 2>"$WORK/replay.log" || {
    cat "$WORK/replay.log"
    fail "replay exited non-zero"
}
grep "done:" "$WORK/replay.log" >&2
redis-cli -u "$ACTIVITY_REDIS_URL" --scan --pattern "${PREFIX}r:*" 2>/dev/null |
    xargs -r -n 500 redis-cli -u "$ACTIVITY_REDIS_URL" DEL >/dev/null 2>&1 || true
diff=$(psql_test -tAc "SELECT (SELECT count(*) FROM ((TABLE snap_devices EXCEPT ALL TABLE dim_devices)
                                UNION ALL (TABLE dim_devices EXCEPT ALL TABLE snap_devices)) x)
                            + (SELECT count(*) FROM ((TABLE snap_users EXCEPT ALL TABLE dim_users)
                                UNION ALL (TABLE dim_users EXCEPT ALL TABLE snap_users)) y)
                            + (SELECT count(*) FROM snap_changes
                               WHERE d <> (SELECT count(*) FROM dim_devices_changes)
                                  OR u <> (SELECT count(*) FROM dim_users_changes))")
[ "$diff" = 0 ] || fail "the replay changed $diff dimension rows"
say "ok"
