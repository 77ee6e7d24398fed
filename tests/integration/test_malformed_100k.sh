#!/usr/bin/env bash
# test_malformed_100k.sh — 100,000 records of which 10% are malformed in
# assorted ways (wrong magic byte, too short, unknown schema id, truncated
# body, hostile lengths, trailing bytes, missing host, event_time out of
# range, oversized field, invalid UTF-8 / NUL, a device on the events
# topic). Every good record must be counted exactly as in a clean run (the
# sink tables equal the plain-SQL reference over the good records only),
# every bad one must be in the dead-letter topic with the right reason, and
# the processor must not stop. Then `activity dlq` lists and re-drives.
source "$(dirname "$0")/lib.sh"

GOOD=${IT_GOOD:-90000}
BAD=${IT_BAD:-10000}
PY=$("$ROOT/scripts/pyenv.sh")
DEVICES=$ROOT/../shared/data/devices.csv
[ -f "$ROOT/data/devices.csv" ] && DEVICES=$ROOT/data/devices.csv

say "generating $GOOD good events"
python3 "$ROOT/scripts/gen_events.py" --events "$GOOD" --seed 13 --out "$WORK/events.csv"
# The topic exists before the bad records arrive (load creates it).
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null

say "producing $((BAD / 2)) bad records, the good ones, $((BAD - BAD / 2)) more bad ones"
"$ROOT/scripts/stack.sh" kafka-topics --create --topic "$T_EVENTS" --partitions 6 >/dev/null
"$PY" "$ROOT/tests/integration/avro_records.py" bad --brokers "$ACTIVITY_KAFKA_BROKERS" \
    --topic "$T_EVENTS" --count $((BAD / 2)) --seed 3 --expected "$WORK/bad1.json"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/events.csv" 2>"$WORK/load.log" || {
    cat "$WORK/load.log"
    fail "load failed"
}
"$PY" "$ROOT/tests/integration/avro_records.py" bad --brokers "$ACTIVITY_KAFKA_BROKERS" \
    --topic "$T_EVENTS" --count $((BAD - BAD / 2)) --seed 4 --expected "$WORK/bad2.json"

say "run: --until-caught-up over $((GOOD + BAD)) records"
start=$(date +%s.%N)
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up --flush-interval 2 \
    2>"$WORK/run.log" || {
    tail -n 30 "$WORK/run.log"
    fail "the processor exited non-zero on malformed input"
}
grep "done:" "$WORK/run.log" >&2
grep -q "($GOOD events, .* $BAD dead letters)" "$WORK/run.log" ||
    fail "expected $GOOD events and $BAD dead letters"
say "processed in $(awk "BEGIN {print $(date +%s.%N) - $start}") s"

say "dead letters by reason"
"$ACTIVITY" dlq list "${TOPIC_FLAGS[@]}" --json >"$WORK/dlq.jsonl"
python3 - "$WORK/dlq.jsonl" "$WORK/bad1.json" "$WORK/bad2.json" "$T_EVENTS" <<'PY'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = collections.Counter()
for f in sys.argv[2:4]:
    want.update(json.load(open(f)))
got = collections.Counter(r["reason"] for r in rows)
for reason in sorted(set(want) | set(got)):
    print(f"  {reason:26} expected {want[reason]:5}  in DLQ {got[reason]:5}", file=sys.stderr)
if got != want:
    sys.exit("dead-letter reasons differ from what was produced")
src = {(r["source_partition"], r["source_offset"]) for r in rows}
if len(src) != len(rows) or any(r["source_topic"] != sys.argv[4] for r in rows):
    sys.exit("dead letters do not name distinct source offsets of the events topic")
PY

say "comparing the sink tables with the reference over the good records"
load_reference "$WORK/events.csv" "$DEVICES"
compare_tables

say "activity dlq redrive: the trailing-bytes ones to a side topic"
n=$(python3 -c "import json,sys; print(sum(json.load(open(f)).get('trailing-bytes',0) for f in sys.argv[1:]))" \
    "$WORK/bad1.json" "$WORK/bad2.json")
"$ACTIVITY" dlq redrive "${TOPIC_FLAGS[@]}" --reason trailing-bytes --dry-run >"$WORK/dry.txt" 2>/dev/null
[ "$(wc -l <"$WORK/dry.txt")" = "$n" ] || fail "dry run listed $(wc -l <"$WORK/dry.txt"), expected $n"
"$ROOT/scripts/stack.sh" kafka-topics --create --topic "$T_EVENTS.redrive" --partitions 6 >/dev/null
"$ACTIVITY" dlq redrive "${TOPIC_FLAGS[@]}" --reason trailing-bytes --to-topic "$T_EVENTS.redrive" 2>&1 |
    grep -q "re-drove $n of" || fail "redrive did not report $n records"
[ "$(topic_count "$T_EVENTS.redrive")" = "$n" ] || fail "redrive topic does not hold $n records"
"$ROOT/scripts/stack.sh" kafka-topics --delete --topic "$T_EVENTS.redrive" >/dev/null 2>&1 || true
say "ok"
