#!/usr/bin/env bash
# test_broker_unreachable.sh — with no broker listening, run, load and dlq
# must give up after --broker-timeout (default 10 s), exit non-zero, and say
# which brokers they could not reach and why (librdkafka's reason), not
# just name a topic.
source "$(dirname "$0")/lib.sh"

BROKERS=127.0.0.1:1,127.0.0.1:2 # nothing listens on ports 1 and 2
python3 "$ROOT/scripts/gen_events.py" --events 10 --no-edge-cases --seed 1 --out "$WORK/events.csv"

# expect_unreachable NAME MIN_S MAX_S COMMAND...
expect_unreachable() {
    local name=$1 min=$2 max=$3
    shift 3
    local start end
    start=$(date +%s.%N)
    if "$@" 2>"$WORK/$name.log"; then
        fail "$name exited 0 without brokers"
    fi
    end=$(date +%s.%N)
    local took
    took=$(awk "BEGIN {printf \"%.1f\", $end - $start}")
    awk "BEGIN {exit !($took >= $min && $took <= $max)}" ||
        fail "$name gave up after $took s, expected $min..$max s"
    grep -q "cannot reach the Kafka brokers $BROKERS within" "$WORK/$name.log" &&
        grep -q "Connection refused" "$WORK/$name.log" || {
        cat "$WORK/$name.log" >&2
        fail "$name does not name the brokers and librdkafka's reason"
    }
    say "$name: gave up after $took s: $(grep -o 'cannot reach.*' "$WORK/$name.log" | head -1 | cut -c1-160)"
}

expect_unreachable run-2s 1.5 8 "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --until-caught-up \
    --brokers "$BROKERS" --broker-timeout 2
expect_unreachable load-2s 1.5 8 "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --brokers "$BROKERS" \
    --broker-timeout 2 "$WORK/events.csv"
expect_unreachable dlq-2s 1.5 8 "$ACTIVITY" dlq list "${TOPIC_FLAGS[@]}" --brokers "$BROKERS" \
    --broker-timeout 2
ACTIVITY_BROKER_TIMEOUT=3 expect_unreachable dlq-env-3s 2.5 9 "$ACTIVITY" dlq list \
    "${TOPIC_FLAGS[@]}" --brokers "$BROKERS"
expect_unreachable run-default 9 18 "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --until-caught-up \
    --brokers "$BROKERS"
