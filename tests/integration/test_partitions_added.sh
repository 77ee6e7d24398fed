#!/usr/bin/env bash
# test_partitions_added.sh — partitions added to the events topic while a
# single member runs (issue 9). librdkafka notices new partitions at its
# next metadata refresh: run sets topic.metadata.refresh.interval.ms to 10 s
# (librdkafka's default is 300 s), so the new partitions' events must land
# in the tables within 30 s, equal to the reference.
source "$(dirname "$0")/lib.sh"

prepare_chunks "${IT_EVENTS:-40000}" 71 2
"$ROOT/scripts/stack.sh" kafka-topics --create --topic "$T_EVENTS" --partitions 2 >/dev/null
load_chunks 0 0 0
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --flush-interval 1 2>"$WORK/run.log" &
proc=$!
wait_for_log "$WORK/run.log" "flushed"
sleep 2

say "adding 4 partitions, then loading the second half of the events"
"$ROOT/scripts/stack.sh" kafka-topics --alter --topic "$T_EVENTS" --partitions 6 >/dev/null
load_chunks 1 1 0
loaded=$(date +%s)
n_new=$(kcat -b "$ACTIVITY_KAFKA_BROKERS" -C -t "$T_EVENTS" -e -q -f '%p\n' 2>/dev/null |
    awk '$1 >= 2' | wc -l)
[ "$n_new" -gt 0 ] || fail "no events went to the new partitions"
say "$n_new events in the new partitions; waiting for the tables to equal the reference"
ok=0
while [ $(($(date +%s) - loaded)) -lt 30 ]; do
    if psql_test -f "$ROOT/tests/integration/compare.sql" >/dev/null 2>&1; then
        ok=1
        break
    fi
    sleep 1
done
took=$(($(date +%s) - loaded))
[ "$ok" = 1 ] || {
    grep -E "assigned|revoked" "$WORK/run.log" >&2 || true
    fail "the new partitions' events did not land within 30 s"
}
say "the tables equal the reference $took s after the load"
grep "assigned" "$WORK/run.log" | tail -1 >&2
kill -TERM "$proc"
wait "$proc" || fail "the processor did not exit 0 on SIGTERM"
compare_tables -v uv_tolerance_pct=0
say "ok"
