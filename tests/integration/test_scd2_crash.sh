#!/usr/bin/env bash
# test_scd2_crash.sh — the exactly-once test applied to the dimensions: kill -9 at 12 moments
# while device and profile changes stream in, restarting each time; dim_devices and dim_users
# must equal the plain-SQL reference exactly.
#
# Half the kills are SIGKILLs at random instants, half are failpoints (ACTIVITY_FAILPOINT)
# at the instants that matter: Redis applies sent but unread, applied but not committed to
# Kafka, buffers taken (dirty -> flushing, dim -> dimflushing) but not written, the merge
# staged but not committed, committed but the flushing buffers not yet dropped. Then the same
# records are replayed by a new consumer group over the same Redis state: nothing changes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/scd2_lib.sh"

PARTS=8
DIMS=$WORK/dims
python3 "$ROOT/scripts/gen_dims.py" --out "$DIMS" --devices "${IT_SCD2_CRASH_DEVICES:-10000}" \
    --users 8000 --profile-changes "${IT_SCD2_CRASH_CHANGES:-40000}" --parts "$PARTS" --seed 9
load_part() {
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DIMS/devices.$1.csv" 2>/dev/null
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_PROFILES" "$DIMS/profiles.$1.jsonl" \
        2>/dev/null
}
# Part 1 first, so both topics exist when the first instance subscribes: a static member
# that rejoins with a longer topic list keeps its old assignment (no rebalance).
load_part 1
(
    for i in $(seq 2 "$PARTS"); do
        sleep 0.7
        load_part "$i"
    done
) &
LOADER_PID=$!

FLAGS=(--instance-id "crash-$RUN_ID" --batch-size 2000 --flush-interval 0.3
    --dim-users-track "$SCD2_USERS_TRACK")
crash_loop 12 "${FLAGS[@]}"
wait "$LOADER_PID"
say "final run"
run_until_caught_up "$WORK/final.log" "${FLAGS[@]}"
grep "done:" "$WORK/final.log" >&2
scd2_reference "$DIMS"
compare_dims "after 12 crashes"

say "replaying from the beginning in a new group over the same state"
digest() {
    psql_test -tA -c "SELECT * FROM dim_devices ORDER BY device_sk" \
        -c "SELECT * FROM dim_users ORDER BY user_sk" | md5sum
}
before=$(digest)
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it${RUN_ID}b" --until-caught-up \
    --dim-users-track "$SCD2_USERS_TRACK" 2>"$WORK/replay.log" || fail "replay exited non-zero"
[ "$(digest)" = "$before" ] || fail "the replay changed the dimensions"
say "ok"
