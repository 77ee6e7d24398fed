#!/usr/bin/env bash
# test_hostile_strings.sh — hosts and urls holding quotes, backslashes,
# braces (a "{0}" that looks like a hash tag), newlines, carriage returns,
# tabs, control bytes, "\N", "NULL", long (a 2048-byte host: the --max-key-bytes
# default; 4001-byte urls) and non-ASCII text,
# written by fastavro. None is a dead letter; every host must round-trip
# into PostgreSQL byte for byte (the tables equal the plain-SQL reference,
# which compares hosts exactly), and every Redis key that holds a host must
# still carry its key group's "{g}" hash tag first, whatever the host holds.
source "$(dirname "$0")/lib.sh"

N=${IT_HOSTILE:-3000}
PY=$("$ROOT/scripts/pyenv.sh")
DEVICES=$ROOT/../shared/data/devices.csv
[ -f "$ROOT/data/devices.csv" ] && DEVICES=$ROOT/data/devices.csv

"$ROOT/scripts/stack.sh" kafka-topics --create --topic "$T_EVENTS" --partitions 6 >/dev/null
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
"$PY" "$ROOT/tests/integration/avro_records.py" hostile --brokers "$ACTIVITY_KAFKA_BROKERS" \
    --topic "$T_EVENTS" --csv "$WORK/hostile.csv" --count "$N"

"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up --flush-interval 2 \
    2>"$WORK/run.log" || {
    tail -n 30 "$WORK/run.log"
    fail "run exited non-zero"
}
grep "done:" "$WORK/run.log" >&2
grep -q "($N events, .* 0 dead letters)" "$WORK/run.log" || fail "hostile strings were refused"

say "Redis keys: the {g} hash tag comes first in every key"
bad=$(redis-cli -u "$ACTIVITY_REDIS_URL" EVAL '
local n, bad = 0, 0
for _, k in ipairs(redis.call("KEYS", ARGV[1] .. ":*")) do
  n = n + 1
  local rest = string.sub(k, #ARGV[1] + 2)
  -- global keys (meta, flushgen) hold no host; every other key starts with {g}
  if not string.match(rest, "^[a-z_]+$") and not string.match(rest, "^{%d+}:") then
    bad = bad + 1
  end
end
return {n, bad}' 0 "$PREFIX" | tr '\n' ' ')
say "keys, keys without a leading {g} tag: $bad"
[ "${bad#* }" = "0 " ] || fail "keys without their hash tag: $bad"
quoted=$(redis-cli -u "$ACTIVITY_REDIS_URL" EVAL \
    'return #redis.call("KEYS", ARGV[1] .. ":{*}:h:*quote\"host")' 0 "$PREFIX")
[ "$quoted" -ge 1 ] || fail "no Redis key for the host with a quote"

say "PostgreSQL: hosts byte for byte"
load_reference "$WORK/hostile.csv" "$DEVICES"
compare_tables
missing=$(psql_test -tAc "SELECT count(*) FROM (SELECT DISTINCT host FROM raw_events
    EXCEPT SELECT host FROM host_activity_reduced) x")
[ "$missing" = 0 ] || fail "$missing hosts did not arrive exactly"
long=$(psql_test -tAc "SELECT count(*) FROM host_activity_reduced WHERE host = repeat('x', 2048)")
[ "$long" -ge 1 ] || fail "the 2048-byte host is missing"
say "ok"
