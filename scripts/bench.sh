#!/usr/bin/env bash
# bench.sh — `make bench`: throughput and Redis cost of the processor on the
# local stack, measured side by side in one run. Prints figures; it never
# passes or fails on them (these machines are shared and noisy: compare the
# ratios, not the absolute numbers).
#
#   BENCH_EVENTS (default 2000000)   events in the generated month
#   BENCH_RUN_FLAGS                  extra flags for both `activity run`s,
#                                    e.g. "--batch-size 300000"
#
# Figures: events/s through `activity run --until-caught-up`; the same for
# bare consume+decode loops over the same topic (the fastest is the
# ceiling); their ratio; Redis commands per 1,000 events (sent by the
# processor, and as counted by the server, which includes the commands our
# Lua scripts run); Redis memory per tracked (user, device, month) entry;
# flush rows/s; the maximum RSS of `activity run` (GNU time's %M).
#
#   BENCH_ACTIVITY, BENCH_UNFENCED, BENCH_CONSUME_DECODE  other builds of
#                                    bin/activity, build/activity-unfenced and
#                                    build/consume_decode to measure (e.g. an
#                                    older commit's, for before/after figures)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
N=${BENCH_EVENTS:-2000000}
ACTIVITY=${BENCH_ACTIVITY:-$ROOT/bin/activity}
CONSUME_DECODE=${BENCH_CONSUME_DECODE:-$ROOT/build/consume_decode}
UNFENCED=${BENCH_UNFENCED:-$ROOT/build/activity-unfenced}
ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" up >/dev/null
eval "$("$ROOT/scripts/stack.sh" env)"
ID=$(date +%s)
T_EVENTS=bench.$ID.events
T_DEVICES=bench.$ID.devices
PREFIX=bench$ID
DB=bench_$ID
CACHE=$ROOT/.stack/bench
mkdir -p "$CACHE"
DEVICES=$ROOT/../shared/data/devices.csv
[ -f "$ROOT/data/devices.csv" ] && DEVICES=$ROOT/data/devices.csv
CSV=$CACHE/events_$N.csv
rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
cleanup() {
    "$ROOT/scripts/redis_drop.sh" "$PREFIX" || true
    "$ROOT/scripts/redis_drop.sh" "${PREFIX}u" || true
    psql -X -q "$ACTIVITY_PG_DSN" -c "DROP DATABASE IF EXISTS ${DB}u WITH (FORCE)" >/dev/null 2>&1 || true
    psql -X -q "$ACTIVITY_PG_DSN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    "$ROOT/scripts/stack.sh" kafka-topics --delete --topic "bench\\.$ID\\..*" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ ! -s "$CSV" ]; then
    echo "bench: generating $N events (cached in $CSV)" >&2
    python3 "$ROOT/scripts/gen_events.py" --events "$N" --seed 1 --out "$CSV"
fi
psql -X -q -v ON_ERROR_STOP=1 "$ACTIVITY_PG_DSN" -c "CREATE DATABASE $DB" >/dev/null
PG=${ACTIVITY_PG_DSN%/*}/$DB
FLAGS=(--events-topic "$T_EVENTS" --devices-topic "$T_DEVICES" --dlq-topic "bench.$ID.dlq" --redis-prefix "$PREFIX" --pg-dsn "$PG")

echo "bench: loading $N events" >&2
"$ACTIVITY" load "${FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
load_start=$(date +%s.%N)
"$ACTIVITY" load "${FLAGS[@]}" --topic "$T_EVENTS" "$CSV" 2>"$CACHE/load.log"
load_end=$(date +%s.%N)

echo "bench: ceiling (consume + decode only)" >&2
# Four raw loops: librdkafka's defaults or a deep prefetch, one message per
# call or the batch call (as the processor reads). The ceiling
# is the fastest of them.
ceilings=()
for variant in "" "tuned" "batch" "tuned batch"; do
    # shellcheck disable=SC2086
    ceilings+=("$("$CONSUME_DECODE" "$ACTIVITY_KAFKA_BROKERS" "$T_EVENTS" $variant)")
done

echo "bench: the same without fencing (build/activity-unfenced)" >&2
psql -X -q -v ON_ERROR_STOP=1 "$ACTIVITY_PG_DSN" -c "CREATE DATABASE ${DB}u" >/dev/null
# shellcheck disable=SC2086 # BENCH_RUN_FLAGS is a list of flags
"$UNFENCED" run --events-topic "$T_EVENTS" --devices-topic "$T_DEVICES" \
    --dlq-topic "bench.$ID.dlq" --redis-prefix "${PREFIX}u" --pg-dsn "${ACTIVITY_PG_DSN%/*}/${DB}u" \
    --group "bench${ID}u" --until-caught-up ${BENCH_RUN_FLAGS:-} 2>"$CACHE/run-unfenced.log" || {
    cat "$CACHE/run-unfenced.log" >&2
    exit 1
}
unfenced_line=$(grep 'done:' "$CACHE/run-unfenced.log")

echo "bench: activity run --until-caught-up" >&2
# info SECTION FIELD: one field of Redis' INFO; redis_cpu: Redis' CPU seconds.
info() { rcli INFO "$1" | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'; }
redis_cpu() { rcli INFO cpu | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {print s}'; }
# The CPU seconds of this shell's children, from a saved `times` (run in this
# shell, not in a $(...) subshell, so that it counts them).
children_cpu() { tail -1 "$1" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } print n }'; }
cmds_before=$(info stats total_commands_processed)
mem_before=$(info memory used_memory)
redis_cpu_before=$(redis_cpu)
times >"$CACHE/times.before"
# GNU time writes the run's maximum resident set size (KB) to run.rss.
# shellcheck disable=SC2086 # BENCH_RUN_FLAGS is a list of flags
/usr/bin/time -f %M -o "$CACHE/run.rss" \
    "$ACTIVITY" run "${FLAGS[@]}" --group "bench$ID" --until-caught-up ${BENCH_RUN_FLAGS:-} \
    2>"$CACHE/run.log" || {
    cat "$CACHE/run.log" >&2
    exit 1
}
times >"$CACHE/times.after"
redis_cpu_after=$(redis_cpu)
run_cpu_before=$(children_cpu "$CACHE/times.before")
run_cpu_after=$(children_cpu "$CACHE/times.after")
cmds_after=$(info stats total_commands_processed)
mem_after=$(info memory used_memory)
done_line=$(grep 'done:' "$CACHE/run.log")

# Memory of the per-user day masks: MEMORY USAGE of every user hash, and the
# number of (user, device, month) entries they hold.
ud_bytes=0
ud_entries=0
while read -r key; do
    b=$(rcli MEMORY USAGE "$key" SAMPLES 0)
    e=$(rcli HVALS "$key" | tr ',' '\n' | grep -c '=' || true)
    ud_bytes=$((ud_bytes + b))
    ud_entries=$((ud_entries + e))
done < <(rcli --scan --pattern "$PREFIX:{*}:u:*")

python3 - "$N" "${ceilings[0]}" "$done_line" "$cmds_before" "$cmds_after" "$mem_before" "$mem_after" \
    "$ud_bytes" "$ud_entries" "$load_start" "$load_end" "$unfenced_line" "${ceilings[1]}" \
    "${ceilings[2]}" "${ceilings[3]}" "$run_cpu_before" "$run_cpu_after" \
    "$redis_cpu_before" "$redis_cpu_after" "$(cat "$CACHE/run.rss")" <<'PY'
import re, sys
n = int(sys.argv[1])
rates = [float(re.search(r"rate=(\d+)", sys.argv[i]).group(1)) for i in (2, 13, 14, 15)]
names = ["librdkafka defaults, consumer_poll", "deep prefetch, consumer_poll",
         "librdkafka defaults, batch call", "deep prefetch, batch call"]
ceiling = max(rates)
d = sys.argv[3]
m = re.search(r"done: (\d+) records .* in ([\d.]+) s, (\d+) records/s; (\d+) redis commands; (\d+) rows flushed in ([\d.]+) s", d)
records, secs, rate, cmds, rows, fsecs = int(m[1]), float(m[2]), float(m[3]), int(m[4]), int(m[5]), float(m[6])
server_cmds = int(sys.argv[5]) - int(sys.argv[4])
mem = int(sys.argv[7]) - int(sys.argv[6])
ud_bytes, ud_entries = int(sys.argv[8]), int(sys.argv[9])
load_rate = n / (float(sys.argv[11]) - float(sys.argv[10]))
print(f"events                          {n}")
print(f"load (activity load)            {load_rate:,.0f} events/s")
print(f"activity run --until-caught-up  {rate:,.0f} events/s ({records} records in {secs:.2f} s, final flush included)")
for name, r in zip(names, rates):
    print(f"raw consume+decode loop         {r:,.0f} events/s ({name})")
print(f"ceiling (the fastest raw loop)  {ceiling:,.0f} events/s")
print(f"ratio run / ceiling             {rate / ceiling:.2f}")
u = re.search(r"(\d+) records/s", sys.argv[12])
if u:
    print(f"same run without fencing        {float(u.group(1)):,.0f} events/s (fencing costs {100 * (1 - rate / float(u.group(1))):.1f}%)")
run_cpu = float(sys.argv[17]) - float(sys.argv[16])
redis_cpu = float(sys.argv[19]) - float(sys.argv[18])
print(f"cpu per 1000 events             {run_cpu * 1000 / records * 1000:.2f} ms processor, {redis_cpu * 1000 / records * 1000:.2f} ms redis-server")
print(f"redis commands / 1000 events    {cmds * 1000 / records:.1f} sent by the processor; {server_cmds * 1000 / records:.1f} executed by the server (incl. inside Lua)")
print(f"redis memory                    {mem / 1e6:.1f} MB used_memory growth")
if ud_entries:
    print(f"memory per (user,device,month)  {ud_bytes / ud_entries:.1f} B ({ud_entries} entries in {ud_bytes / 1e6:.2f} MB of user hashes)")
print(f"flush                           {rows} rows in {fsecs:.2f} s = {rows / fsecs if fsecs else 0:,.0f} rows/s")
print(f"max RSS of activity run         {int(sys.argv[20]) / 1024:.1f} MB")
PY

# BENCH_PEERS=1: the same job written as a Python consumer, a Kafka Streams app and a Flink
# job (../shared/peers, see its README), side by side with the processor over 1,000,000
# events (BENCH_PEERS_EVENTS), after the figures above. The first run builds the Java peers.
if [ "${BENCH_PEERS:-0}" = 1 ]; then
    SBS=$ROOT/../shared/peers/side_by_side.sh
    [ -x "$SBS" ] || { echo "bench: BENCH_PEERS=1 needs $SBS" >&2; exit 1; }
    # side_by_side.sh (read-only, shared) reads the peers' schema from the checkout's
    # sinks/schema.sql, which is sinks/sql/schema.sql here since the folders became layers: it
    # gets a checkout whose entries link to this one's, plus that file. BENCH_ACTIVITY, if
    # set, is the binary it runs as bin/activity.
    VIEW=$(mktemp -d "${TMPDIR:-/tmp}/bench-peers.XXXXXX")
    trap 'rm -rf "$VIEW"; cleanup' EXIT
    for entry in "$ROOT"/* "$ROOT"/.stack; do
        [ -e "$entry" ] && ln -s "$entry" "$VIEW/$(basename "$entry")"
    done
    rm "$VIEW/sinks" "$VIEW/bin"
    mkdir "$VIEW/sinks" "$VIEW/bin"
    ln -s "$ROOT"/sinks/* "$VIEW/sinks/"
    ln -s "$ROOT/sinks/sql/schema.sql" "$VIEW/sinks/schema.sql"
    ln -s "$ACTIVITY" "$VIEW/bin/activity"
    echo "bench: side by side with the peers (${SBS_SYSTEMS:-project python kstreams flink})" >&2
    SBS_SYSTEMS=${SBS_SYSTEMS:-project python kstreams flink} "$SBS" "$VIEW" "${BENCH_PEERS_EVENTS:-1000000}"
fi
