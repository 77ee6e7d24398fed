#!/usr/bin/env bash
# test_end_to_end.sh — a generated month through the real stack, compared
# with the same tables computed by plain SQL over the raw events.
#
# Order matters here on purpose: the events (plus a few undecodable
# records) are processed first while no device is known, and the devices
# arrive in a second run; the user table must come out exactly as if the
# devices had been there all along. Undecodable records must land in the
# dead-letter topic with their reason while the processor carries on.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_EVENTS:-300000}
say "generating $EVENTS events"
python3 "$ROOT/scripts/gen_events.py" --events "$EVENTS" --seed 7 --out "$WORK/events.csv"
DEVICES=$ROOT/../shared/data/devices.csv
[ -f "$ROOT/data/devices.csv" ] && DEVICES=$ROOT/data/devices.csv

say "loading events"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/events.csv"

# Undecodable records: wrong magic byte, truncated body, unknown schema id,
# too short for the framing. Each must reach the dead-letter topic.
printf '\x01\x00\x00\x00\x01garbage' >"$WORK/bad1"
printf '\x00\x00\x00\x00\x01\x02' >"$WORK/bad2"
printf '\x00\x00\x00\x00\x63\x00\x00' >"$WORK/bad3"
printf '\x00\x00' >"$WORK/bad4"
for f in bad1 bad2 bad3 bad4; do
    kcat -b "$ACTIVITY_KAFKA_BROKERS" -P -t "$T_EVENTS" -p 0 "$WORK/$f"
done

say "run 1: events only, no device known yet"
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up --flush-interval 2 \
    2>"$WORK/run1.log" || {
    cat "$WORK/run1.log"
    fail "run 1 exited non-zero"
}
grep "done:" "$WORK/run1.log" >&2
grep -q "4 dead letters" "$WORK/run1.log" || {
    cat "$WORK/run1.log"
    fail "run 1 did not report 4 dead letters"
}

dlq=$(kcat -b "$ACTIVITY_KAFKA_BROKERS" -C -t "$T_DLQ" -e -q -f '%h\n' 2>/dev/null)
for reason in bad-magic-byte undecodable-body unknown-schema-id too-short; do
    grep -q "activity.reason=$reason" <<<"$dlq" || fail "no dead letter with reason $reason: $dlq"
done
grep -q "activity.source.topic=$T_EVENTS" <<<"$dlq" || fail "dead letters lack the source topic"
[ "$(grep -c . <<<"$dlq")" = 4 ] || fail "expected 4 dead letters, got: $dlq"

say "loading devices, run 2"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES"
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up --flush-interval 2 \
    2>"$WORK/run2.log" || {
    cat "$WORK/run2.log"
    fail "run 2 exited non-zero"
}

grep "done:" "$WORK/run2.log" >&2
say "computing the reference with plain SQL and comparing"
load_reference "$WORK/events.csv" "$DEVICES"
compare_tables
rows=$(psql_test -tAc "SELECT count(*) FROM user_devices_cumulated")
[ "$rows" -gt 1000 ] || fail "user_devices_cumulated has only $rows rows"
say "ok"
