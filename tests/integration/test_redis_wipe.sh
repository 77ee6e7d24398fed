#!/usr/bin/env bash
# test_redis_wipe.sh — Redis loses the state while the connection stays up
# (FLUSHDB; an empty replica behind a proxy looks the same): once while
# events stream in, once when every partition is quiet (only the flush and
# the fence advance can notice then). The processor must rebuild every
# partition from the topics (devices included) and must never write the
# partial rebuild: the watched totals of the sink tables (rows of
# user_devices_cumulated, hits of host_activity_reduced) never go down.
# It exits 0 on SIGTERM and the tables equal the reference exactly.
source "$(dirname "$0")/lib.sh"

rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
EVENTS=${IT_WIPE_EVENTS:-200000}
start_fault_run "$EVENTS" 71 12
proc=$PROC

# Samples the totals every 0.2 s into $WORK/totals (until the file stop exists).
watch_totals() {
    while [ ! -e "$WORK/stop" ]; do
        psql_test -tAc "SELECT (SELECT count(*) FROM user_devices_cumulated),
            (SELECT coalesce(sum(h), 0) FROM host_activity_reduced, unnest(hit_array) h)" \
            2>/dev/null | tr '|' ' ' >>"$WORK/totals" || true
        sleep 0.2
    done
}
# Waits until "back where it stood" (the end of a rebuild) was logged N times.
wait_rebuilds() {
    for _ in $(seq 1 120); do
        [ "$(grep -c "back where it stood" "$WORK/run.log" || true)" -ge "$1" ] && return 0
        kill -0 "$proc" 2>/dev/null || fail "the processor died"
        sleep 0.5
    done
    say "rebuild $1 was not reported within 60 s; going on (the checks below decide)"
}
for _ in $(seq 1 60); do
    grep -q "flushed" "$WORK/run.log" && break
    sleep 0.5
done
watch_totals &
watcher=$!
load_chunks 1 9 0.5 &
loader=$!
sleep 2.5
say "FLUSHDB while streaming ($(rcli DBSIZE) keys)"
rcli FLUSHDB >/dev/null
wait "$loader"
say "waiting for the rebuild and the stream to settle"
wait_rebuilds 1
sleep 4
say "FLUSHDB while every partition is quiet ($(rcli DBSIZE) keys)"
rcli FLUSHDB >/dev/null
wait_rebuilds 2
load_chunks 10 11 0.3
sleep 4
touch "$WORK/stop"
wait "$watcher"
kill -TERM "$proc"
wait "$proc" || {
    tail -30 "$WORK/run.log" >&2
    fail "the processor did not exit 0 on SIGTERM"
}
grep -E "lost the state|went back|flushes wait|back where it stood" "$WORK/run.log" |
    cut -c1-220 >&2 || true
# The partial rebuild was never flushed: the totals only ever grew.
python3 - "$WORK/totals" <<'PY' || fail "a sink total went down: a flush wrote lost or partial state"
import sys
prev, n = None, 0
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) != 2:
        continue
    cur = tuple(int(x) for x in parts)
    n += 1
    if prev and (cur[0] < prev[0] or cur[1] < prev[1]):
        sys.exit(f"user rows, hits went from {prev} to {cur}")
    prev = cur
print(f"[test_redis_wipe] {n} samples of (user rows, hits), never down; last {prev}", file=sys.stderr)
PY
run_until_caught_up "$WORK/final.log"
compare_tables -v uv_tolerance_pct=0
[ "$(grep -c "redis lost the state" "$WORK/run.log")" -ge 2 ] || fail "the wipes were not both reported"
say "ok"
