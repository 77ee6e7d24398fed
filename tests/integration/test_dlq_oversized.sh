#!/usr/bin/env bash
# test_dlq_oversized.sh — records too large for the dead-letter topic (issue
# 9): a 1.2 MB record, one just over 1 MB (legal on a default topic, over
# librdkafka's 1,000,000-byte producer default), an event with a 1.1 MB url
# (oversized-field), a 1.5 MB key, all produced with a raised producer
# limit, mixed with good events. The run must process everything and exit
# 0; the DLQ holds each bad record once, cut to fit with its original sizes
# and SHA-256 in headers (checked with confluent-kafka, not our code); the
# tables equal the reference over the good events; a restart does not loop.
# Then the DLQ topic's max.message.bytes is lowered under a running
# processor: the refused delivery stops it with a message naming the DLQ
# topic and the broker's reason (not a "redis unavailable" loop), and the
# next run, which reads the new limit, dead-letters the record and converges.
# Last, the DLQ topic is deleted under a running processor: after librdkafka's
# bounded retries (message.timeout.ms) it stops with the DLQ topic named, and
# the next run recreates the topic and converges.
source "$(dirname "$0")/lib.sh"

PY=$("$ROOT/scripts/pyenv.sh")
GOOD=${IT_GOOD:-20000}
python3 "$ROOT/scripts/gen_events.py" --events "$GOOD" --seed 21 --out "$WORK/events.csv"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
# The events topic accepts large records; the DLQ topic is left to the
# processor (created with the broker's defaults: max.message.bytes 1048588).
"$ROOT/scripts/stack.sh" kafka-topics --create --topic "$T_EVENTS" --partitions 3 \
    --config max.message.bytes=8000000 >/dev/null
say "producing oversized records around $GOOD good events"
"$PY" "$ROOT/tests/integration/avro_records.py" oversized --brokers "$ACTIVITY_KAFKA_BROKERS" \
    --topic "$T_EVENTS" --expected "$WORK/oversized1.json" --kinds huge,just-over-1mb,huge-field
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/events.csv" 2>/dev/null
"$PY" "$ROOT/tests/integration/avro_records.py" oversized --brokers "$ACTIVITY_KAFKA_BROKERS" \
    --topic "$T_EVENTS" --expected "$WORK/oversized2.json" --kinds huge-key,small
load_reference "$WORK/events.csv" "$DEVICES"

say "run: --until-caught-up"
run_until_caught_up "$WORK/run1.log" --flush-interval 2
grep "done:" "$WORK/run1.log" >&2
grep -q "($GOOD events, .* 5 dead letters)" "$WORK/run1.log" ||
    fail "expected $GOOD events and 5 dead letters"
if grep -q "redis unavailable" "$WORK/run1.log"; then fail "a dead letter posed as a redis outage"; fi
[ "$(grep -c "is truncated from" "$WORK/run1.log")" = 4 ] || fail "expected 4 truncation warnings"
say "checking the dead letters (limit: the producer's 1000000 bytes)"
"$PY" "$ROOT/tests/integration/dlq_check.py" "$ACTIVITY_KAFKA_BROKERS" "$T_DLQ" \
    1000000="$WORK/oversized1.json" 1000000="$WORK/oversized2.json" ||
    fail "dead letters are not as expected"
"$ACTIVITY" dlq list "${TOPIC_FLAGS[@]}" >"$WORK/list.txt"
[ "$(grep -c "(truncated from " "$WORK/list.txt")" = 4 ] || fail "dlq list does not show 4 truncated"
"$ACTIVITY" dlq redrive "${TOPIC_FLAGS[@]}" --reason oversized-field --to-topic "$T_EVENTS.x" \
    2>"$WORK/redrive.log" || fail "redrive failed"
grep -q "re-drove 0 of" "$WORK/redrive.log" || fail "a truncated dead letter was re-driven"
compare_tables

say "restart: nothing to redo, no loop"
start=$(date +%s)
run_until_caught_up "$WORK/run2.log" --flush-interval 2
[ $(($(date +%s) - start)) -lt 60 ] || fail "the restart took $(($(date +%s) - start)) s"
grep -q " 0 dead letters)" "$WORK/run2.log" || fail "the restart dead-lettered again"
[ "$(topic_count "$T_DLQ")" = 5 ] || fail "the DLQ holds $(topic_count "$T_DLQ") records, not 5"

say "the DLQ topic's max.message.bytes lowered to 2000 under a running processor"
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --flush-interval 1 2>"$WORK/run3.log" &
pid=$!
wait_for_log "$WORK/run3.log" "assigned"
"$PY" - "$ACTIVITY_KAFKA_BROKERS" "$T_DLQ" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
a = AdminClient({"bootstrap.servers": sys.argv[1]})
entry = ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET)
for f in a.incremental_alter_configs([ConfigResource("topic", sys.argv[2],
                                                     incremental_configs=[entry])]).values():
    f.result()
PY
"$PY" "$ROOT/tests/integration/avro_records.py" oversized --brokers "$ACTIVITY_KAFKA_BROKERS" \
    --topic "$T_EVENTS" --expected "$WORK/oversized3.json" --kinds huge --seed 9
for _ in $(seq 1 90); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    tail -5 "$WORK/run3.log" >&2
    fail "the processor did not stop on a dead letter the DLQ refused"
fi
rc=0
wait "$pid" || rc=$?
[ "$rc" != 0 ] || fail "the processor exited 0 although a dead letter was refused"
grep "could not be delivered" "$WORK/run3.log" | tail -1 >&2
grep -q "could not be delivered to the dead-letter topic $T_DLQ: .*too large" "$WORK/run3.log" ||
    fail "the exit does not name the DLQ topic and the broker's reason"
if grep -q "redis unavailable" "$WORK/run3.log"; then fail "the refusal posed as a redis outage"; fi

say "the next run reads the lower limit and converges"
run_until_caught_up "$WORK/run4.log" --flush-interval 2
"$PY" "$ROOT/tests/integration/dlq_check.py" "$ACTIVITY_KAFKA_BROKERS" "$T_DLQ" \
    1000000="$WORK/oversized1.json" 1000000="$WORK/oversized2.json" 2000="$WORK/oversized3.json" ||
    fail "dead letters are not as expected after the limit was lowered"
compare_tables

say "the DLQ topic deleted under a running processor (retries bounded: message.timeout.ms 5 s)"
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --flush-interval 1 \
    -X message.timeout.ms=5000 2>"$WORK/run5.log" &
pid=$!
wait_for_log "$WORK/run5.log" "assigned"
"$ROOT/scripts/stack.sh" kafka-topics --delete --topic "$T_DLQ" >/dev/null
for _ in $(seq 1 50); do
    [ "$(kcat -b "$ACTIVITY_KAFKA_BROKERS" -L -t "$T_DLQ" 2>/dev/null | grep -c "Broker: Unknown topic")" = 1 ] && break
    sleep 0.2
done
"$PY" "$ROOT/tests/integration/avro_records.py" oversized --brokers "$ACTIVITY_KAFKA_BROKERS" \
    --topic "$T_EVENTS" --expected "$WORK/small.json" --kinds small
start=$(date +%s)
for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    tail -5 "$WORK/run5.log" >&2
    fail "the processor did not stop on a dead letter it could not deliver"
fi
rc=0
wait "$pid" || rc=$?
say "stopped after $(($(date +%s) - start)) s with exit $rc"
[ "$rc" != 0 ] || fail "exit 0 although a dead letter was not delivered"
grep "could not be delivered" "$WORK/run5.log" | tail -1 >&2
grep -q "could not be delivered to the dead-letter topic $T_DLQ: " "$WORK/run5.log" ||
    fail "the exit does not name the DLQ topic"
if grep -q "redis unavailable" "$WORK/run5.log"; then fail "the failure posed as a redis outage"; fi
say "the next run creates the topic again and converges"
run_until_caught_up "$WORK/run6.log" --flush-interval 2
[ "$(topic_count "$T_DLQ")" = 1 ] || fail "the new DLQ topic holds $(topic_count "$T_DLQ") records, not 1"
compare_tables
say "ok"
