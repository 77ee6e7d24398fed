# lib.sh — shared setup for integration tests against the real local stack.
#
# Each test gets its own topics, Redis key prefix and PostgreSQL database
# (named after a run id), so tests never see each other's data and a rerun
# starts clean. Sourced by tests/integration/test_*.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
ACTIVITY=$ROOT/bin/activity
eval "$("$ROOT/scripts/stack.sh" env)"
RUN_ID=${RUN_ID:-$(date +%s)$$}
T_EVENTS=it.$RUN_ID.events
T_DEVICES=it.$RUN_ID.devices
T_DLQ=it.$RUN_ID.dlq
T_PROFILES=it.$RUN_ID.profiles
PREFIX=it$RUN_ID
DB=it_$RUN_ID
WORK=$(mktemp -d /tmp/activity-it.XXXXXX)
PG_ADMIN_DSN=$ACTIVITY_PG_DSN
export ACTIVITY_PG_DSN=${ACTIVITY_PG_DSN%/*}/$DB
TOPIC_FLAGS=(--events-topic "$T_EVENTS" --devices-topic "$T_DEVICES" --profiles-topic "$T_PROFILES"
    --dlq-topic "$T_DLQ" --redis-prefix "$PREFIX")
# IT_GROUP_PROTOCOL=consumer runs a test's consumers on KIP-848's group protocol (classic,
# librdkafka's default, otherwise); test_consumer_group_kip848.sh sets it, and any other
# test can be run under it by hand. Producers ignore the property (with a warning).
IT_GROUP_PROTOCOL=${IT_GROUP_PROTOCOL:-classic}
case $IT_GROUP_PROTOCOL in
classic) ;;
consumer) TOPIC_FLAGS+=(-X group.protocol=consumer) ;;
*) echo "IT_GROUP_PROTOCOL must be classic or consumer, not '$IT_GROUP_PROTOCOL'" >&2; exit 2 ;;
esac

say() { echo "[$(basename "$0" .sh)] $*" >&2; }
fail() {
    say "FAIL: $*"
    exit 1
}

psql_test() { psql -X -q -v ON_ERROR_STOP=1 "$ACTIVITY_PG_DSN" "$@"; }

cleanup() {
    local rc=$?
    # Processes the test started in the background (members, loaders) do
    # not outlive it, whichever way it ends.
    local pid
    for pid in $(jobs -p); do
        pkill -9 -P "$pid" 2>/dev/null || true
        kill -9 "$pid" 2>/dev/null || true
    done
    # A failed test keeps its logs (members' stderr, generated data).
    if [ "$rc" = 0 ]; then rm -rf "$WORK"; else say "logs kept in $WORK"; fi
    # IT_KEEP=1 keeps a failed test's Redis keys and database too.
    if [ "$rc" != 0 ] && [ "${IT_KEEP:-0}" = 1 ]; then
        say "kept redis prefix $PREFIX and database $DB"
        exit $rc
    fi
    "$ROOT/scripts/redis_drop.sh" "$PREFIX" 2>/dev/null || true
    psql -X -q "$PG_ADMIN_DSN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    exit $rc
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 "$PG_ADMIN_DSN" -c "CREATE DATABASE $DB" >/dev/null

# Loads the raw events and devices into PostgreSQL and computes the
# expected tables with plain SQL (reference.sql).
load_reference() {
    local events_csv=$1 devices_csv=$2
    psql_test <<SQL
CREATE TABLE raw_events(url text, referrer text, user_id bigint, device_id bigint, host text, event_time timestamp);
CREATE TABLE raw_devices(device_id bigint, browser_type text, os_type text, device_type text);
\copy raw_events FROM '$events_csv' CSV HEADER
\copy raw_devices FROM '$devices_csv' CSV HEADER
SQL
    psql_test -f "$ROOT/tests/integration/reference.sql" >/dev/null
}

# Compares the sink tables with the expected ones; fails the test on any
# difference (compare.sql raises).
# Extra arguments go to psql (compare.sql's -v uv_tolerance_pct=P loosens the
# default: unique counts equal to the reference's, the extension's sketches').
compare_tables() {
    psql_test "$@" -f "$ROOT/tests/integration/compare.sql" || fail "sink tables differ from the reference"
}

DEVICES=$ROOT/../shared/data/devices.csv
[ -f "$ROOT/data/devices.csv" ] && DEVICES=$ROOT/data/devices.csv

# Generates N events (seeded), loads them and the devices into the test's
# topics and computes the expected tables; sets EVENTS_CSV.
setup_month() {
    local n=$1 seed=${2:-11}
    EVENTS_CSV=$WORK/events.csv
    python3 "$ROOT/scripts/gen_events.py" --events "$n" --seed "$seed" --out "$EVENTS_CSV"
    load_events "$EVENTS_CSV"
}

# Loads the devices and the event CSV into the test's topics and computes the
# expected tables.
load_events() {
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$1" 2>/dev/null
    load_reference "$1" "$DEVICES"
}

# generate_months OUT EVENTS SEED MONTH:USERS...: EVENTS generated events in each MONTH
# (YYYY-MM) from a population of USERS, all with one SEED, so the same user ids recur across
# months (a smaller population is a prefix of a larger one); concatenated into the CSV OUT.
generate_months() {
    local out=$1 n=$2 seed=$3 m part
    shift 3
    : >"$out"
    for m in "$@"; do
        part=$out.${m%:*}
        python3 "$ROOT/scripts/gen_events.py" --events "$n" --month "${m%:*}" --seed "$seed" \
            --users "${m#*:}" --out "$part"
        if [ -s "$out" ]; then tail -n +2 "$part" >>"$out"; else cat "$part" >"$out"; fi
        rm -f "$part"
    done
}

# Runs the processor to completion (extra flags appended); fails the test
# if it does not exit 0.
run_until_caught_up() {
    local log=$1
    shift
    "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up "$@" 2>"$log" || {
        tail -30 "$log" >&2
        fail "activity run --until-caught-up exited non-zero"
    }
}

# A digest of the four sink tables, to show a rerun changed nothing.
tables_digest() {
    psql_test -tA <<'SQL' | md5sum | cut -d' ' -f1
SELECT host, month_start, hit_array, unique_visitors_array FROM host_activity_reduced ORDER BY 1, 2;
SELECT host, month_start, host_activity_datelist FROM hosts_cumulated ORDER BY 1, 2;
SELECT user_id, browser_type, month_start, device_activity_datelist, datelist_int
FROM user_devices_cumulated ORDER BY 1, 2, 3;
SELECT user_id, month_start, dates_active, datelist_int FROM users_cumulated ORDER BY 1, 2;
SQL
}

# Number of records in a topic (sum of high watermarks minus low).
topic_count() {
    kcat -b "$ACTIVITY_KAFKA_BROKERS" -C -t "$1" -e -q -f '%o\n' 2>/dev/null | wc -l
}

# Generates N events, computes the reference, loads the devices and splits
# the events into CHUNKS CSV files ($WORK/chunks/partNNN.csv).
prepare_chunks() {
    local n=$1 seed=$2 chunks=$3
    EVENTS_CSV=$WORK/events.csv
    python3 "$ROOT/scripts/gen_events.py" --events "$n" --seed "$seed" --out "$EVENTS_CSV"
    load_reference "$EVENTS_CSV" "$DEVICES"
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
    mkdir -p "$WORK/chunks"
    tail -n +2 "$EVENTS_CSV" >"$WORK/body.csv"
    split -n "l/$chunks" -d -a 3 "$WORK/body.csv" "$WORK/chunks/part"
    for f in "$WORK"/chunks/part???; do
        { head -1 "$EVENTS_CSV"; cat "$f"; } >"$f.csv"
    done
}

# Loads chunks FROM..TO (inclusive) with a pause after each.
load_chunks() {
    local from=$1 to=$2 pause=$3
    for i in $(seq "$from" "$to"); do
        "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" \
            "$(printf '%s/chunks/part%03d.csv' "$WORK" "$i")" 2>/dev/null
        sleep "$pause"
    done
}

# prepare_chunks, then loads all of them in the background (LOADER_PID), so
# a processor running meanwhile sees a stream rather than a backlog.
start_streaming_month() {
    local n=$1 seed=$2 chunks=$3 pause=$4
    prepare_chunks "$n" "$seed" "$chunks"
    # The first chunk synchronously: the events topic must exist before a
    # processor starts, or a static member (--instance-id) restarted later
    # keeps its devices-only assignment.
    load_chunks 0 0 0
    load_chunks 1 $((chunks - 1)) "$pause" &
    LOADER_PID=$!
}

# crash_random LO HI FLAGS...: runs the processor with FLAGS and kills it
# with kill -9 after a random LO-HI seconds. crash_at POINT NTH TENTHS
# FLAGS...: runs it with ACTIVITY_FAILPOINT=POINT:NTH (it SIGKILLs itself
# there) and kill -9s it after TENTHS tenths of a second if the point was not
# reached. Both log to $WORK/crash.log and set CRASH_HOW to what happened.
crash_random() {
    local lo=$1 hi=$2 delay pid
    shift 2
    delay=$(python3 -c "import random; print(round(random.uniform($lo, $hi), 2))")
    "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" "$@" 2>>"$WORK/crash.log" &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    CRASH_HOW="kill -9 after ${delay}s"
}

crash_at() {
    local point=$1 nth=$2 tenths=$3 pid
    shift 3
    ACTIVITY_FAILPOINT="$point:$nth" "$ACTIVITY" run "${TOPIC_FLAGS[@]}" \
        --group "it$RUN_ID" "$@" 2>>"$WORK/crash.log" &
    pid=$!
    for _ in $(seq 1 "$tenths"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -9 "$pid" 2>/dev/null; then
        CRASH_HOW="kill -9 after $((tenths / 10))s ($point:$nth not reached)"
    else
        CRASH_HOW="failpoint $point:$nth"
    fi
    wait "$pid" 2>/dev/null || true
}

# crash_loop N FLAGS...: starts the processor N times with FLAGS and kills
# each run: odd runs with kill -9 after a random 0.5-1.6 s, even runs by
# SIGKILL at a failpoint (ACTIVITY_FAILPOINT, cycling through the crash
# points; kill -9 after 4 s if the point was not reached). Logs go to
# $WORK/crash.log; prints how many failpoints fired.
crash_loop() {
    local runs=$1 i
    shift
    local points=(apply-sent apply-done flush-after-take flush-before-commit flush-after-commit)
    for i in $(seq 1 "$runs"); do
        if ((i % 2)); then
            crash_random 0.5 1.6 "$@"
        else
            crash_at "${points[$(((i / 2) % ${#points[@]}))]}" $((RANDOM % 3 + 1)) 40 "$@"
        fi
        say "crash $i: $CRASH_HOW"
    done
    say "$(grep -c "failpoint .* reached" "$WORK/crash.log" || true) failpoints fired"
}

# The fault tests' setup: prepares N events in CHUNKS chunks (seeded), loads
# the first and starts a processor in the background (PROC; log
# $WORK/run.log) with small batches and a 0.5 s flush interval, so that a
# fault staged meanwhile lands between applies and flushes.
start_fault_run() {
    local n=$1 seed=$2 chunks=$3
    say "preparing $n events in $chunks chunks"
    prepare_chunks "$n" "$seed" "$chunks"
    load_chunks 0 0 0
    "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --batch-size 5000 \
        --flush-interval 0.5 2>"$WORK/run.log" &
    PROC=$!
}

# wait_for_log FILE PATTERN [SECONDS]: waits (default 20 s) until a grep
# pattern appears in a log a background process writes; fails the test if
# it never does.
wait_for_log() {
    local file=$1 pattern=$2 secs=${3:-20} _
    for _ in $(seq 1 $((secs * 5))); do
        grep -q "$pattern" "$file" 2>/dev/null && return 0
        sleep 0.2
    done
    fail "'$pattern' did not appear in $(basename "$file") within $secs s"
}

# expect_stop PID LOG PATTERN: the processor PID must exit within 30 s,
# non-zero, with a line matching PATTERN (grep) in LOG; sets STOP_RC.
expect_stop() {
    local pid=$1 log=$2 pattern=$3
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then fail "the processor still runs 30 s after the fault"; fi
    STOP_RC=0
    wait "$pid" || STOP_RC=$?
    [ "$STOP_RC" != 0 ] || fail "the processor stopped with exit 0"
    grep -q "$pattern" "$log" || {
        tail -20 "$log" >&2
        fail "the stop does not say: $pattern"
    }
}
