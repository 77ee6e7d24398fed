#!/usr/bin/env bash
# test_pg_rollback_dims.sh — PostgreSQL goes back in time under a running
# processor, and with it the SCD2 dimensions: their change history lives
# only in PostgreSQL (Redis buffers a change until its flush), so the
# processor must have the devices and profiles topics read again from the
# start. A backup is taken after the first part of the histories was
# flushed, the second part is processed, then the backup is restored over
# the tables; after SIGTERM, dim_devices and dim_users must equal the
# plain-SQL SCD2 over the full history (scd2_reference.sql), row for row.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/scd2_lib.sh"

DIMS=$WORK/dims
python3 "$ROOT/scripts/gen_dims.py" --out "$DIMS" --devices "${IT_ROLLBACK_DEVICES:-5000}" \
    --users 4000 --profile-changes "${IT_ROLLBACK_PROFILE_CHANGES:-20000}" --parts 2 --seed 9
load_part() {
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DIMS/devices.$1.csv" 2>/dev/null
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_PROFILES" "$DIMS/profiles.$1.jsonl" 2>/dev/null
}
changes() {
    psql_test -tAc "SELECT (SELECT count(*) FROM dim_devices_changes) ||' '||
        (SELECT count(*) FROM dim_users_changes)" 2>/dev/null || echo none
}
# Waits until the change tables hold something and stay the same for 2 s.
wait_settled() {
    local prev=none cur
    for _ in $(seq 1 120); do
        kill -0 "$proc" 2>/dev/null || fail "the processor died"
        cur=$(changes)
        [ "$cur" != none ] && [ "$cur" != "0 0" ] && [ "$cur" = "$prev" ] && return 0
        prev=$cur
        sleep 2
    done
    fail "the dimension changes never settled"
}

load_part 1
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --flush-interval 0.5 \
    --dim-users-track "$SCD2_USERS_TRACK" 2>"$WORK/run.log" &
proc=$!
wait_settled
backup=$(changes)
say "pg_dump with part 1 flushed (changes of devices, users: $backup)"
pg_dump -Fc "$ACTIVITY_PG_DSN" -f "$WORK/backup.dump"
load_part 2
wait_settled
say "part 2 flushed ($(changes)); restoring the backup under the running processor"
pg_restore --clean --if-exists --single-transaction -d "$ACTIVITY_PG_DSN" "$WORK/backup.dump"
[ "$(changes)" = "$backup" ] || fail "the restore did not take the tables back"
for _ in $(seq 1 120); do
    grep -q "back where it stood" "$WORK/run.log" && break
    kill -0 "$proc" 2>/dev/null || fail "the processor died"
    sleep 0.5
done
wait_settled
kill -TERM "$proc"
wait "$proc" || {
    tail -30 "$WORK/run.log" >&2
    fail "the processor did not exit 0 on SIGTERM"
}
grep -E "went back in time|re-reading|back where it stood" "$WORK/run.log" | cut -c1-200 >&2 || true
scd2_reference "$DIMS"
compare_dims "after the restore"
grep -q "postgres went back in time" "$WORK/run.log" || fail "the rollback was not reported"
say "ok"
