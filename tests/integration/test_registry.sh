#!/usr/bin/env bash
# test_registry.sh — the schema registry client against a real registry: Apicurio Registry
# (from Maven Central, run by scripts/registry.sh) through its Confluent-compatible API.
#
#   1. `activity load --schema-registry` registers web_event and device under
#      <topic>-value and frames its records with the ids the registry gave.
#   2. A producer we did not write (fastavro + confluent-kafka, registry_records.py)
#      registers two evolved writer schemas under the same subject and writes the rest of
#      the month with them, plus one record framed with an id the registry does not know.
#   3. `activity run --schema-registry` fetches every writer schema by id, resolves it into
#      the reader schema: the sink tables must equal the plain-SQL reference, and the one
#      record with the unknown id must be a dead letter with reason unknown-schema-id.
#
# Starts the registry if it is not running, and then stops it again at the end.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_EVENTS:-30000}
PY=$("$ROOT/scripts/pyenv.sh")
REGISTRY_SH=$ROOT/scripts/registry.sh
REG_DIR=$(realpath -m "${ACTIVITY_REGISTRY_DIR:-$ROOT/.stack/registry}")

registry_started=0
if ! "$REGISTRY_SH" status >/dev/null 2>&1; then
    "$REGISTRY_SH" up
    registry_started=1
fi
registry_cleanup() {
    local rc=$?
    if [ "$registry_started" = 1 ]; then "$REGISTRY_SH" down || true; fi
    (exit $rc)
    cleanup
}
trap registry_cleanup EXIT
REG=$("$REGISTRY_SH" url)
say "registry: $REG"

reg_get() { curl -sf -m 10 "$REG$1"; }

python3 "$ROOT/scripts/gen_events.py" --events "$EVENTS" --seed 31 --out "$WORK/events.csv"
# The first half goes through `activity load`, the second through the Python producer
# (which also checks that registering the reader schema again returns load's id).
half=$(((EVENTS + 1) / 2))
head -n $((half + 1)) "$WORK/events.csv" >"$WORK/part_c.csv"
{
    head -n 1 "$WORK/events.csv"
    tail -n +$((half + 2)) "$WORK/events.csv"
} >"$WORK/part_py.csv"

say "loading devices and half of $EVENTS events with activity load --schema-registry"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --schema-registry "$REG" --topic "$T_DEVICES" "$DEVICES" \
    2>"$WORK/load_devices.log" || {
    cat "$WORK/load_devices.log" >&2
    fail "load of the devices exited non-zero"
}
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --schema-registry "$REG" --topic "$T_EVENTS" \
    "$WORK/part_c.csv" 2>"$WORK/load_events.log" || {
    cat "$WORK/load_events.log" >&2
    fail "load of the events exited non-zero"
}
ev_id=$(sed -n "s/.*schema registered under $T_EVENTS-value with id \([0-9]*\).*/\1/p" \
    "$WORK/load_events.log")
dev_id=$(sed -n "s/.*schema registered under $T_DEVICES-value with id \([0-9]*\).*/\1/p" \
    "$WORK/load_devices.log")
{ [ -n "$ev_id" ] && [ -n "$dev_id" ]; } || fail "load did not report the registered ids"
[ "$ev_id" != "$dev_id" ] || fail "web_event and device got the same id $ev_id"
say "registry ids: web_event $ev_id, device $dev_id"

# The registry has the subjects, and the ids it gave hold our schemas.
subjects=$(reg_get /subjects) || fail "GET /subjects failed"
for s in "$T_EVENTS-value" "$T_DEVICES-value"; do
    grep -qF "\"$s\"" <<<"$subjects" || fail "subject $s is not in the registry: $subjects"
done
reg_get "/schemas/ids/$ev_id" | grep -q 'WebEvent' || fail "id $ev_id is not the web_event schema"
reg_get "/schemas/ids/$dev_id" | grep -q 'Device' || fail "id $dev_id is not the device schema"
# Every record `load` wrote is framed with the registry's id.
# (first_bytes TOPIC: the framing of the first record kcat gives, as " 0 b1 b2 b3 b4".)
first_bytes() {
    kcat -b "$ACTIVITY_KAFKA_BROKERS" -C -t "$1" -c 1 -e -q -f '%s' >"$WORK/first.bin" 2>/dev/null
    od -An -tu1 -N5 "$WORK/first.bin" | tr -s ' ' | sed 's/ $//'
}
framing=$(first_bytes "$T_EVENTS")
[ "$framing" = " 0 $((ev_id >> 24 & 255)) $((ev_id >> 16 & 255)) $((ev_id >> 8 & 255)) $((ev_id & 255))" ] ||
    fail "load framed its records with '$framing', not id $ev_id"

say "producing the other half with evolved writer schemas (fastavro, registered by Python)"
out=$("$PY" "$ROOT/tests/integration/registry_records.py" --registry "$REG" \
    --brokers "$ACTIVITY_KAFKA_BROKERS" --topic "$T_EVENTS" --csv "$WORK/part_py.csv" \
    --reader-id "$ev_id") || fail "registry_records.py failed"
say "python: $out"
jq_py() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($2)" "$out"; }
old_id=$(jq_py "" "d['ids']['older']")
new_id=$(jq_py "" "d['ids']['newer']")
unknown_id=$(jq_py "" "d['unknown']")
versions=$(reg_get "/subjects/$T_EVENTS-value/versions") || fail "GET versions failed"
[ "$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$versions")" = 3 ] ||
    fail "expected 3 versions under $T_EVENTS-value, got $versions"

mark=$(wc -l <"$REG_DIR/access.log" 2>/dev/null || echo 0)
say "activity run --schema-registry"
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up --flush-interval 2 \
    --schema-registry "$REG" 2>"$WORK/run.log" || {
    tail -n 30 "$WORK/run.log" >&2
    fail "run exited non-zero"
}
grep "done:" "$WORK/run.log" >&2
grep -q "($EVENTS events, .* 1 dead letters)" "$WORK/run.log" || {
    "$ACTIVITY" dlq list "${TOPIC_FLAGS[@]}" --limit 5 >&2 || true
    fail "expected all $EVENTS events decoded and 1 dead letter"
}

dlq=$(kcat -b "$ACTIVITY_KAFKA_BROKERS" -C -t "$T_DLQ" -e -q -f '%h\n' 2>/dev/null)
[ "$(grep -c . <<<"$dlq")" = 1 ] || fail "expected 1 dead letter, got: $dlq"
grep -q "activity.reason=unknown-schema-id" <<<"$dlq" ||
    fail "the dead letter's reason is not unknown-schema-id: $dlq"
dlq_value=$(first_bytes "$T_DLQ")
[ "$dlq_value" = " 0 $((unknown_id >> 24 & 255)) $((unknown_id >> 16 & 255)) $((unknown_id >> 8 & 255)) $((unknown_id & 255))" ] ||
    fail "the dead letter is not the record framed with id $unknown_id: $dlq_value"

# The processor asked the registry for each id once (the access log shows the client).
if [ -f "$REG_DIR/access.log" ]; then
    asked=$(tail -n +$((mark + 1)) "$REG_DIR/access.log" | grep '"activity"$' |
        sed -n 's#.*"GET /apis/ccompat/v7/schemas/ids/\([0-9]*\) HTTP[^"]*" \([0-9]*\).*#\1:\2#p' |
        sort -t: -k1n | tr '\n' ' ')
    say "ids activity run fetched (id:status): $asked"
    for want in "$ev_id:200" "$dev_id:200" "$old_id:200" "$new_id:200" "$unknown_id:404"; do
        [ "$(grep -o "\b$want\b" <<<"$asked" | wc -l)" = 1 ] ||
            fail "expected exactly one GET /schemas/ids for $want, got: $asked"
    done
fi

say "comparing the tables with the reference"
load_reference "$WORK/events.csv" "$DEVICES"
compare_tables
rows=$(psql_test -tAc "SELECT count(*) FROM hosts_cumulated")
[ "$rows" -gt 0 ] || fail "hosts_cumulated is empty"
say "ok"
