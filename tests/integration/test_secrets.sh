#!/usr/bin/env bash
# test_secrets.sh — no credential reaches a log. Every command of a test
# run is given passwords the ways an operator gives them — a Redis URL with
# an ACL user's password, a PostgreSQL DSN with a password, sasl.password in
# a --config file and in ACTIVITY_KAFKA_SASL_PASSWORD, a schema registry
# URL with user:password and --schema-registry-user-info — including runs
# that fail on purpose so the URLs are echoed in error messages, with
# --verbose and librdkafka's configuration debug dump on. Then every log of
# the run is grepped for every password: none may appear, the redaction
# mark must (so the test sees the places where they would have leaked), no
# raw librdkafka line (%N|…) may bypass the logger, and the JSON log format
# must give one valid JSON object per line.
source "$(dirname "$0")/lib.sh"

S=$RUN_ID
REDIS_PW="redis-pw-$S"
BAD_REDIS_PW="redis-bad-pw-$S"
PG_PW="pg-pw-$S"
KAFKA_FILE_PW="kafka-file-pw-$S"
KAFKA_ENV_PW="kafka-env-pw-$S"
REGISTRY_URL_PW="registry-url-pw-$S"
REGISTRY_UI_PW="registry-ui-pw-$S"
SECRETS=("$REDIS_PW" "$BAD_REDIS_PW" "$PG_PW" "$KAFKA_FILE_PW" "$KAFKA_ENV_PW" "$REGISTRY_URL_PW"
    "$REGISTRY_UI_PW")

# A Redis ACL user with a password, removed at the end whatever happens.
REDIS_USER="it$S"
redis_host=${ACTIVITY_REDIS_URL#redis://}
redis_host=${redis_host%%/*}
redis-cli -u "$ACTIVITY_REDIS_URL" ACL SETUSER "$REDIS_USER" on ">$REDIS_PW" '~*' '&*' '+@all' >/dev/null
trap 'rc=$?; redis-cli -u "$ACTIVITY_REDIS_URL" ACL DELUSER "$REDIS_USER" >/dev/null 2>&1; (exit $rc); cleanup' EXIT
export ACTIVITY_REDIS_URL="redis://$REDIS_USER:$REDIS_PW@$redis_host/0"
# The stack's PostgreSQL trusts loopback, so the password is accepted and unused.
pg_rest=${ACTIVITY_PG_DSN#postgresql://postgres@}
export ACTIVITY_PG_DSN="postgresql://postgres:$PG_PW@$pg_rest"
redis-cli --no-auth-warning -u "$ACTIVITY_REDIS_URL" PING | grep -q PONG || fail "the ACL user cannot log in"

cat >"$WORK/activity.conf" <<CONF
# librdkafka properties next to our options, as kcat -F reads them
sasl.username=it
sasl.password=$KAFKA_FILE_PW
debug=conf
flush-interval=1
CONF

python3 "$ROOT/scripts/gen_events.py" --events 2000 --seed 3 --out "$WORK/events.csv"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" --config "$WORK/activity.conf" \
    "$WORK/events.csv" 2>"$WORK/load.log" || fail "load failed: $(tail -3 "$WORK/load.log")"

say "run with passwords in the URL, the DSN, the config file and the environment"
ACTIVITY_KAFKA_SASL_PASSWORD=$KAFKA_ENV_PW run_until_caught_up "$WORK/run.log" \
    --config "$WORK/activity.conf" --verbose

say "run and load with a malformed Redis URL and an unreachable registry, which the errors name"
if "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --until-caught-up \
    --redis-url "redis://:$BAD_REDIS_PW@127.0.0.1:x/0" 2>"$WORK/bad-redis.log"; then
    fail "run with an unreachable Redis exited 0"
fi
grep -q '\*\*\*' "$WORK/bad-redis.log" || {
    cat "$WORK/bad-redis.log" >&2
    fail "the malformed Redis URL was not echoed (redacted) in the error"
}
if "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" \
    --schema-registry "http://reg:$REGISTRY_URL_PW@127.0.0.1:1" \
    --schema-registry-user-info "reg:$REGISTRY_UI_PW" "$WORK/events.csv" 2>"$WORK/bad-registry.log"; then
    fail "load with an unreachable schema registry exited 0"
fi
ACTIVITY_SCHEMA_REGISTRY_URL="http://reg:$REGISTRY_URL_PW@127.0.0.1:1" \
    "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$S-reg" --until-caught-up \
    --log-format json 2>"$WORK/registry-json.log" || true # its records are applied already
grep -q "reg:\*\*\*@" "$WORK/registry-json.log" || {
    cat "$WORK/registry-json.log" >&2
    fail "the registry URL was not logged (redacted)"
}

say "dlq list, with the password in the environment"
ACTIVITY_KAFKA_SASL_PASSWORD=$KAFKA_ENV_PW "$ACTIVITY" dlq list "${TOPIC_FLAGS[@]}" \
    --config "$WORK/activity.conf" 2>"$WORK/dlq.log" >/dev/null || fail "dlq list failed"

logs=("$WORK"/*.log)
for log in "${logs[@]}"; do
    [ -s "$log" ] || fail "$(basename "$log") is empty"
done
for secret in "${SECRETS[@]}"; do
    if grep -lF "$secret" "${logs[@]}"; then
        grep -hF "$secret" "${logs[@]}" | head -5 >&2
        fail "a password leaked into the logs above"
    fi
done
if grep -n '^%[0-9]|' "${logs[@]}"; then
    fail "librdkafka wrote past the logger"
fi
grep -q 'kafka CONFWARN\|kafka CONF\|kafka [A-Z]*:' "$WORK/run.log" ||
    fail "librdkafka's log lines do not reach our log"
python3 - "$WORK/registry-json.log" <<'PY' || fail "--log-format json wrote a line that is not a JSON object"
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    assert set(o) == {"ts", "level", "cmd", "msg"}, o
    assert o["cmd"] == "run" and o["level"] in ("debug", "info", "warn", "error"), o
    n += 1
assert n > 0
PY
say "no password in $(cat "${logs[@]}" | wc -l) log lines of ${#logs[@]} logs; ${#SECRETS[@]} passwords checked"
