#!/usr/bin/env bash
# test_metrics.sh — the --metrics-addr endpoint as an operator sees it: a
# real Prometheus (Debian's package), started here on loopback, scrapes a
# running processor; its HTTP API must then show the records counter equal
# to the records loaded, the dead-letter counter equal to the bad records
# produced (by reason), the applied counter equal to the good ones, and the
# consumer lag of every partition reaching 0 once caught up. Then /readyz
# must turn unready while Redis is stopped and ready again after, and
# Prometheus must have seen activity_redis_up drop to 0 meanwhile; the same
# for PostgreSQL.
source "$(dirname "$0")/lib.sh"
STACK=$ROOT/scripts/stack.sh

GOOD=${IT_METRICS_GOOD:-20000}
BAD=${IT_METRICS_BAD:-500}
PY=$("$ROOT/scripts/pyenv.sh")
command -v prometheus >/dev/null || fail "prometheus is not installed (scripts/deps.sh installs it)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MPORT=$(free_port)
PPORT=$(free_port)
PROM=http://127.0.0.1:$PPORT

say "producing $GOOD good and $BAD bad events"
python3 "$ROOT/scripts/gen_events.py" --events "$GOOD" --seed 17 --out "$WORK/events.csv"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
"$STACK" kafka-topics --create --topic "$T_EVENTS" --partitions 6 >/dev/null
"$PY" "$ROOT/tests/integration/avro_records.py" bad --brokers "$ACTIVITY_KAFKA_BROKERS" \
    --topic "$T_EVENTS" --count "$BAD" --seed 5 --expected "$WORK/bad.json"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/events.csv" 2>/dev/null
DEVICE_COUNT=$(topic_count "$T_DEVICES")

cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: activity
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" >"$WORK/prometheus.log" 2>&1 &
prom_pid=$!

say "run with --metrics-addr 127.0.0.1:$MPORT, scraped by Prometheus on :$PPORT"
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --flush-interval 1 \
    --metrics-addr "127.0.0.1:$MPORT" -X statistics.interval.ms=1000 2>"$WORK/run.log" &
proc=$!

# One PromQL query's single value ("" when the result is empty).
query() {
    local out
    out=$(curl -sf --get "$PROM/api/v1/query" --data-urlencode "query=$1") || return 1
    python3 -c 'import json,sys; r=json.loads(sys.argv[1])["data"]["result"]; print(r[0]["value"][1] if r else "")' "$out"
}
# Waits up to $2 s until query $1 yields $3; fails with what it last saw.
await_value() {
    local q=$1 timeout=$2 want=$3 got=""
    for _ in $(seq "$timeout"); do
        got=$(query "$q" || true)
        [ "$got" = "$want" ] && return 0
        kill -0 "$proc" 2>/dev/null || {
            tail -20 "$WORK/run.log" >&2
            fail "the processor died"
        }
        sleep 1
    done
    fail "$q: expected $want, Prometheus says '${got}'"
}

await_value "sum(activity_records_consumed_total{topic=\"$T_EVENTS\"})" 90 $((GOOD + BAD))
say "records consumed from the events topic: $((GOOD + BAD))"
# The start-up line names the versions, the servers' as they report them.
redis_version=$(redis-cli -u "$ACTIVITY_REDIS_URL" INFO server | tr -d '\r' | sed -n 's/^redis_version://p')
pg_version=$(psql_test -tAc 'SHOW server_version')
# librdkafka's is the pinned build's (scripts/librdkafka.sh), not a system one pkg-config finds.
rdk_version=$(PKG_CONFIG_PATH=$("$ROOT/scripts/librdkafka.sh" --prefix)/lib/pkgconfig pkg-config --modversion rdkafka)
grep -qF "with librdkafka $rdk_version;" "$WORK/run.log" &&
    grep -qF "Redis $redis_version, PostgreSQL $pg_version" "$WORK/run.log" || {
    grep "with librdkafka" "$WORK/run.log" >&2
    fail "the start-up line does not give librdkafka's, Redis' ($redis_version) and PostgreSQL's ($pg_version) versions"
}
await_value "sum(activity_records_consumed_total{topic=\"$T_DEVICES\"})" 30 "$DEVICE_COUNT"
await_value "sum(activity_dead_letters_total)" 30 "$BAD"
await_value "sum(activity_records_applied_total{topic=\"$T_EVENTS\"})" 30 "$GOOD"
python3 - "$WORK/bad.json" "$T_EVENTS" >"$WORK/reasons" <<'PY'
import json, sys
for reason, n in sorted(json.load(open(sys.argv[1])).items()):
    print(reason, n)
PY
while read -r reason n; do
    await_value "activity_dead_letters_total{topic=\"$T_EVENTS\",reason=\"$reason\"}" 5 "$n"
done <"$WORK/reasons"
say "dead letters by reason match what was produced ($(wc -l <"$WORK/reasons") reasons)"

# Caught up: every assigned partition's lag is 0 (6 events + devices').
parts=$(($(kcat -b "$ACTIVITY_KAFKA_BROKERS" -L -t "$T_DEVICES" 2>/dev/null | grep -c 'partition ') + 6))
await_value "count(activity_consumer_lag{topic=~\"$T_EVENTS|$T_DEVICES\"} == 0)" 60 "$parts"
await_value "activity_oldest_unflushed_change_seconds" 30 0
await_value "activity_assigned_partitions" 5 "$parts"
say "lag 0 on all $parts partitions; nothing unflushed"

readyz() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz"; }
await_ready() {
    local want=$1 got=""
    for _ in $(seq 60); do
        got=$(readyz)
        [ "$got" = "$want" ] && return 0
        sleep 0.5
    done
    fail "/readyz: expected $want, got $got"
}
await_ready 200
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/healthz")" = 200 ] ||
    fail "/healthz is not 200"

say "stopping Redis: /readyz must turn 503"
ACTIVITY_SKIP_DEPS=1 "$STACK" stop-redis >/dev/null 2>&1
await_ready 503
curl -s "http://127.0.0.1:$MPORT/readyz" | grep -q redis || fail "/readyz does not name Redis"
await_value "activity_redis_up" 20 0
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/healthz")" = 200 ] ||
    fail "/healthz must stay 200 while only Redis is away"
ACTIVITY_SKIP_DEPS=1 "$STACK" start-redis >/dev/null 2>&1
await_ready 200
await_value "activity_redis_up" 20 1
say "/readyz back to 200 with Redis"

say "stopping PostgreSQL: /readyz must turn 503"
ACTIVITY_SKIP_DEPS=1 "$STACK" stop-pg >/dev/null 2>&1
await_ready 503
curl -s "http://127.0.0.1:$MPORT/readyz" | grep -q postgresql || fail "/readyz does not name PostgreSQL"
await_value "activity_postgres_up" 20 0
ACTIVITY_SKIP_DEPS=1 "$STACK" start-pg >/dev/null 2>&1
await_ready 200
await_value "activity_postgres_up" 20 1
[ "$(query 'sum(activity_postgres_retries_total)')" != 0 ] || fail "no PostgreSQL retries counted"
say "/readyz back to 200 with PostgreSQL"

kill -TERM "$proc"
wait "$proc" || {
    tail -20 "$WORK/run.log" >&2
    fail "the processor exited non-zero on SIGTERM"
}
kill "$prom_pid"
wait "$prom_pid" || true
say "PASS"
