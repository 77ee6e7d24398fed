#!/usr/bin/env bash
# test_pg_lock.sh — an analyst holds ACCESS EXCLUSIVE on a sink table for
# 30 s while the processor streams (issue 9). Each flush gives up after
# --pg-lock-timeout (2 s here) and is retried with backoff; consumption goes
# on meanwhile (the group's lag reaches 0 while the lock is held); SIGTERM,
# sent while a flush statement waits for the lock, ends the process within
# the lock timeout (plus the exit's own work: under 5 s in all), with a
# message saying the final flush was given up and the state is in Redis.
# After the lock is released a run converges to the reference.
source "$(dirname "$0")/lib.sh"

prepare_chunks "${IT_EVENTS:-60000}" 61 6
load_chunks 0 0 0
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --flush-interval 1 --pg-lock-timeout 2 \
    2>"$WORK/run.log" &
proc=$!
wait_for_log "$WORK/run.log" "flushed"

say "locking host_activity_reduced for 30 s"
psql_test -c "BEGIN; LOCK TABLE host_activity_reduced IN ACCESS EXCLUSIVE MODE;
    SELECT pg_sleep(30); COMMIT;" >/dev/null &
locker=$!
lock_start=$(date +%s)
sleep 1
load_chunks 1 5 0.2
say "waiting for the consumer group's lag to reach 0 while the lock is held"
lag=unknown
while [ $(($(date +%s) - lock_start)) -lt 22 ]; do
    lag=$(ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" kafka-groups --describe --group "it$RUN_ID" \
        2>/dev/null | awk -v t="$T_EVENTS" '$2 == t { n++; if ($6 == "-") bad = 1; s += $6 }
            END { print (bad || !n) ? "unknown" : s }' || true)
    [ "$lag" = 0 ] && break
    sleep 1
done
[ "$lag" = 0 ] || fail "consumption stalled behind the lock (lag $lag)"
kill -0 "$locker" 2>/dev/null || fail "the lock was released too early for the test to mean anything"
grep -q "lock timeout" "$WORK/run.log" || fail "no flush failed on the lock timeout"

# The worst moment for a signal: while a flush statement waits for the lock.
waiting=0
while [ $(($(date +%s) - lock_start)) -lt 26 ]; do
    waiting=$(psql_test -tAc "SELECT count(*) FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO host_activity_reduced%'")
    [ "$waiting" -gt 0 ] && break
    sleep 0.1
done
[ "$waiting" -gt 0 ] || fail "no flush statement was seen waiting for the lock"
say "SIGTERM while a flush waits for the lock ($(($(date +%s) - lock_start)) s into it)"
term=$(date +%s.%N)
kill -TERM "$proc"
rc=0
wait "$proc" || rc=$?
took=$(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $term}")
say "exited $rc after $took s"
kill -0 "$locker" 2>/dev/null || fail "the lock was released before the processor exited"
awk "BEGIN {exit !($took < 5)}" || fail "SIGTERM took $took s (lock timeout 2 s)"
grep -q "gave up the final flush on shutdown" "$WORK/run.log" ||
    fail "the exit does not say the final flush was given up"
[ "$rc" != 0 ] || fail "exit 0 although the final flush was given up"

wait "$locker"
say "lock released: a run converges"
run_until_caught_up "$WORK/final.log"
compare_tables -v uv_tolerance_pct=0
say "ok"
