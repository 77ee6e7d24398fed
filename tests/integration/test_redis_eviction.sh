#!/usr/bin/env bash
# test_redis_eviction.sh — a Redis that may evict keys (maxmemory with
# allkeys-lru) would drop fences and state silently, so `activity run`
# refuses it: at start, and when the policy changes under a running
# processor (checked at every flush), with a message naming
# maxmemory-policy and a non-zero exit. Stopping must leave the tables
# intact: once noeviction is back, a run catches up to the reference.
source "$(dirname "$0")/lib.sh"

rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
old_policy=$(rcli CONFIG GET maxmemory-policy | tail -1)
old_maxmemory=$(rcli CONFIG GET maxmemory | tail -1)
restore_redis() {
    local rc=$?
    rcli CONFIG SET maxmemory-policy "$old_policy" >/dev/null || true
    rcli CONFIG SET maxmemory "$old_maxmemory" >/dev/null || true
    (exit $rc)
    cleanup
}
trap restore_redis EXIT
[ "$old_policy" = noeviction ] || fail "the test Redis runs with $old_policy, expected noeviction"

EVENTS=${IT_EVICTION_EVENTS:-200000}
say "preparing $EVENTS events in 10 chunks"
prepare_chunks "$EVENTS" 61 10
load_chunks 0 0 0

say "start with maxmemory 2gb and allkeys-lru: must refuse"
rcli CONFIG SET maxmemory 2gb >/dev/null
rcli CONFIG SET maxmemory-policy allkeys-lru >/dev/null
rc=0
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up 2>"$WORK/refused.log" || rc=$?
[ "$rc" != 0 ] || fail "run started on a Redis with allkeys-lru and exited 0"
grep -q "maxmemory-policy is 'allkeys-lru'.*noeviction" "$WORK/refused.log" || {
    cat "$WORK/refused.log" >&2
    fail "the refusal does not name maxmemory-policy and noeviction"
}
say "refused at start (exit $rc): $(grep -o "redis maxmemory-policy is '[^']*'" "$WORK/refused.log")"
[ "$(psql_test -tAc "SELECT count(*) FROM pg_tables WHERE tablename = 'host_activity_reduced'")" = 0 ] ||
    [ "$(psql_test -tAc "SELECT count(*) FROM host_activity_reduced")" = 0 ] ||
    fail "the refused run wrote rows"

say "noeviction again; a processor streams, then the policy turns to allkeys-lru mid-run"
rcli CONFIG SET maxmemory-policy noeviction >/dev/null
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --batch-size 5000 --flush-interval 0.5 \
    2>"$WORK/run.log" &
proc=$!
load_chunks 1 5 0.5
for _ in $(seq 1 60); do
    grep -q "flushed" "$WORK/run.log" && break
    sleep 0.5
done
grep -q "flushed" "$WORK/run.log" || fail "no flush before the policy change"
rcli CONFIG SET maxmemory-policy allkeys-lru >/dev/null
load_chunks 6 7 0.2 &
loader=$!
expect_stop "$proc" "$WORK/run.log" "maxmemory-policy is 'allkeys-lru'"
say "stopped mid-run (exit $STOP_RC): $(grep -c flushed "$WORK/run.log") flushes before the stop"
wait "$loader"

say "noeviction restored: the rest is processed and the tables equal the reference"
rcli CONFIG SET maxmemory-policy noeviction >/dev/null
rcli CONFIG SET maxmemory "$old_maxmemory" >/dev/null
load_chunks 8 9 0
run_until_caught_up "$WORK/final.log"
compare_tables -v uv_tolerance_pct=0
say "ok"
