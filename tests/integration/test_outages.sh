#!/usr/bin/env bash
# test_outages.sh — a long-running processor while events stream in, with
# Redis restarted mid-run (AOF keeps its data), PostgreSQL stopped for 30 s
# mid-run, and the Kafka broker restarted mid-run. The processor must ride
# them all out (pause on Redis, keep consuming and retry flushes on
# PostgreSQL, reconnect to Kafka), exit 0 on SIGTERM, and the tables must
# equal the plain-SQL reference exactly.
source "$(dirname "$0")/lib.sh"
STACK=$ROOT/scripts/stack.sh

EVENTS=${IT_OUTAGE_EVENTS:-500000}
say "preparing $EVENTS events in 30 chunks"
prepare_chunks "$EVENTS" 41 30
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --batch-size 5000 --flush-interval 1 \
    2>"$WORK/run.log" &
proc=$!
load_chunks 0 23 0.5 &
loader=$!

sleep 3
say "restarting Redis"
ACTIVITY_SKIP_DEPS=1 "$STACK" restart-redis >/dev/null 2>&1
sleep 2
say "stopping PostgreSQL for 30 s"
ACTIVITY_SKIP_DEPS=1 "$STACK" stop-pg >/dev/null 2>&1
sleep 30
ACTIVITY_SKIP_DEPS=1 "$STACK" start-pg >/dev/null 2>&1
say "PostgreSQL is back"
wait "$loader"
say "restarting the Kafka broker"
ACTIVITY_SKIP_DEPS=1 "$STACK" restart-kafka >/dev/null 2>&1
load_chunks 24 29 0.2
sleep 4
kill -0 "$proc" || {
    tail -30 "$WORK/run.log" >&2
    fail "the processor died during the outages"
}
kill -TERM "$proc"
wait "$proc" || {
    tail -30 "$WORK/run.log" >&2
    fail "the processor did not exit 0 on SIGTERM"
}
grep -E "redis unavailable|flush failed|recovered|redis is back|done:" "$WORK/run.log" >&2 || true
grep -q "flush failed, will retry" "$WORK/run.log" || fail "no flush failure logged while PostgreSQL was down"
grep -q "flush recovered" "$WORK/run.log" || fail "no flush recovery logged"
run_until_caught_up "$WORK/final.log"
compare_tables -v uv_tolerance_pct=0
say "ok"
