#!/usr/bin/env bash
# test_crash_recovery.sh — kill -9 at 20 moments of a 500,000-event run,
# restarting each time; the tables must equal the plain-SQL reference
# exactly (hits, datelists, datelist_int, the daily sketches byte for byte and unique
# counts equal to their cardinality).
#
# The events arrive in chunks while the processor runs, so every kill lands
# mid-stream. Half the kills are SIGKILLs at random instants; the other half
# are failpoints (ACTIVITY_FAILPOINT) that SIGKILL the process at the
# instants a random kill rarely hits: Redis applies sent but their replies
# unread, applied but not committed to Kafka, dirty sets taken but not
# written, PostgreSQL staged but not committed, committed but not cleaned
# up. Small batches and a short flush interval make every run cross many
# applies and flushes.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_CRASH_EVENTS:-500000}
say "streaming $EVENTS events in 40 chunks"
start_streaming_month "$EVENTS" 21 40 0.4

FLAGS=(--instance-id "crash-$RUN_ID" --batch-size 3000 --flush-interval 0.3)
crash_loop 20 "${FLAGS[@]}"
wait "$LOADER_PID"
say "final run"
run_until_caught_up "$WORK/final.log" "${FLAGS[@]}"
grep "done:" "$WORK/final.log" >&2
compare_tables -v uv_tolerance_pct=0
say "ok"
