#!/usr/bin/env bash
# test_registry_local_evolution.sh — schema evolution end to end, without a
# registry: a month of events written by fastavro (not our encoder) with
# three writer schemas — the reader schema (id 1), an older one without
# url/referrer and with int device ids (id 101), a newer one with extra
# fields of every kind, a widened url union, bytes referrer and
# timestamp-micros (id 102) — interleaved on one topic. The processor is
# told the extra ids with --writer-schema; every record must resolve into
# the reader schema (no dead letters) and the tables must equal the
# plain-SQL reference over the same events.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_EVENTS:-30000}
PY=$("$ROOT/scripts/pyenv.sh")
DEVICES=$ROOT/../shared/data/devices.csv
[ -f "$ROOT/data/devices.csv" ] && DEVICES=$ROOT/data/devices.csv

python3 "$ROOT/scripts/gen_events.py" --events "$EVENTS" --seed 21 --out "$WORK/events.csv"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
"$ROOT/scripts/stack.sh" kafka-topics --create --topic "$T_EVENTS" --partitions 6 >/dev/null
say "producing $EVENTS events with writer schemas 1, 101, 102 (fastavro)"
counts=$("$PY" "$ROOT/tests/integration/avro_records.py" evolve --brokers "$ACTIVITY_KAFKA_BROKERS" \
    --topic "$T_EVENTS" --csv "$WORK/events.csv" --schemas-dir "$WORK/schemas")
say "records per writer schema id: $counts"

"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up --flush-interval 2 \
    --writer-schema "101=$WORK/schemas/101.avsc" --writer-schema "102=$WORK/schemas/102.avsc" \
    2>"$WORK/run.log" || {
    tail -n 30 "$WORK/run.log"
    fail "run exited non-zero"
}
grep "done:" "$WORK/run.log" >&2
grep -q "($EVENTS events, .* 0 dead letters)" "$WORK/run.log" || {
    "$ACTIVITY" dlq list "${TOPIC_FLAGS[@]}" --limit 5 >&2 || true
    fail "not every evolved record resolved into the reader schema"
}

say "comparing the tables of run 1 with the reference"
load_reference "$WORK/events.csv" "$DEVICES"
compare_tables

# (after the comparison: this run writes the same sink tables)
say "without --writer-schema, ids 101/102 are unknown: dead letters, the processor goes on"
psql -X -q -v ON_ERROR_STOP=1 "$PG_ADMIN_DSN" -c "CREATE DATABASE ${DB}b" >/dev/null
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it${RUN_ID}b" --redis-prefix "${PREFIX}b" \
    --pg-dsn "${ACTIVITY_PG_DSN}b" --until-caught-up 2>"$WORK/run2.log" || {
    tail -n 20 "$WORK/run2.log"
    fail "run 2 exited non-zero"
}
psql -X -q "$PG_ADMIN_DSN" -c "DROP DATABASE IF EXISTS ${DB}b WITH (FORCE)" >/dev/null
n=$(python3 -c "import json,sys; c=json.loads(sys.argv[1]); print(c['101']+c['102'])" "$counts")
grep -q " $n dead letters" "$WORK/run2.log" || fail "expected $n dead letters in run 2"
redis-cli -u "$ACTIVITY_REDIS_URL" --scan --pattern "${PREFIX}b:*" |
    xargs -r -n 500 redis-cli -u "$ACTIVITY_REDIS_URL" DEL >/dev/null

say "ok"
