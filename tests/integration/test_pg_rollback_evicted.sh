#!/usr/bin/env bash
# test_pg_rollback_evicted.sh — PostgreSQL restored to a snapshot taken
# before months were evicted from Redis: those months are then in neither
# store. A processor with --evict-closed-months streams six months
# (2023-01 .. 2023-06, half a month per chunk); the sink tables are dumped
# while January streams, January .. March close and are evicted, then the
# dump is restored under the running processor. It must notice (PostgreSQL
# went back in time), re-flush what Redis holds, and never be silent about
# the evicted months: an error naming them and the exact `activity backfill
# --from 2023-01 --to 2023-04` command, activity_evicted_months_lost 3 and
# /readyz 503, while the open months go on being processed; and rebuild
# them itself with that command. Its first attempt is made to fail (the
# test holds the advisory lock of the prefix's backfills): the failure is
# reported, the months stay lost and reported; once the lock is released
# the retry rebuilds them beside the live processor: the gauge returns to
# 0, /readyz to 200, and the tables equal the plain-SQL reference exactly
# (README "Lateness and eviction").
source "$(dirname "$0")/lib.sh"

rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
PER_MONTH=${IT_PG_ROLLBACK_EVICTED_EVENTS:-3000}
METRICS_PORT=$((20000 + RANDOM % 20000))
mkdir -p "$WORK/chunks"
say "generating 6 months of $PER_MONTH events in 12 chunks"
python3 - "$ROOT" "$WORK" "$PER_MONTH" <<'PY'
import csv, sys
root, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, f"{root}/tests/integration")
from months import gen_months
header, months = gen_months(root, work, n, 6, 900)
chunks = []
for rows in months:
    chunks += [rows[:len(rows) // 2], rows[len(rows) // 2:]]
for c, part in enumerate(chunks):
    with open(f"{work}/chunks/part{c:03d}.csv", "w", newline="") as f:
        csv.writer(f).writerows([header] + part)
with open(f"{work}/events.csv", "w", newline="") as f:
    csv.writer(f).writerows([header] + [r for part in chunks for r in part])
PY
load_reference "$WORK/events.csv" "$DEVICES"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
load_chunks 0 0 0

FLAGS=(--group "it$RUN_ID" --evict-closed-months --batch-size 1000 --flush-interval 0.2)
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" "${FLAGS[@]}" --metrics-addr "127.0.0.1:$METRICS_PORT" \
    2>"$WORK/run.log" &
proc=$!
fence() { psql_test -tAc "SELECT coalesce(max(token), 0) FROM activity_flush_fence"; }
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v n="$1" '$1 == n {print int($2)}'; }
evicted() { # MONTH: every key group records it evicted
    local g
    for g in $(seq 0 63); do
        [ "$(rcli SISMEMBER "$PREFIX:{$g}:evicted" "$1")" = 1 ] || return 1
    done
}
wait_until() { # SECONDS WHAT CODE: polls (evaluates) CODE every 0.5 s
    local secs=$1 what=$2 code=$3 i
    for i in $(seq 1 $((secs * 2))); do
        eval "$code" && return 0
        kill -0 "$proc" || fail "the processor died"
        sleep 0.5
    done
    fail "$what within $secs s"
}
load_chunks 1 1 0
wait_until 30 "January's first flush" '[ "$(fence)" -gt 0 ]'
sleep 2
say "pg_dump of the sink tables at flush token $(fence), January streaming"
pg_dump -Fc -T raw_events -T raw_devices -T 'expected_*' "$ACTIVITY_PG_DSN" -f "$WORK/backup.dump"
evicted 202301 && fail "January was evicted before the dump"
load_chunks 2 7 1
for m in 202301 202302 202303; do
    wait_until 30 "month $m evicted" "evicted $m"
done
evicted 202304 && fail "April was evicted: the stream ends in April"
say "holding the advisory lock of the prefix's range backfills"
PGAPPNAME=it_backfill_lock psql_test -c "SELECT pg_advisory_lock(hashtext('activity backfill ' || '$PREFIX'))" \
    -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
wait_until 10 "the lock taken" '[ "$(psql_test -tAc "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE l.locktype = '"'advisory'"' AND l.granted AND a.application_name = '"'it_backfill_lock'"'")" = 1 ]'
say "restoring the dump under the running processor (January .. March evicted)"
pg_restore -l "$WORK/backup.dump" | grep -v ' EXTENSION ' >"$WORK/backup.list"
pg_restore --clean --if-exists --single-transaction -L "$WORK/backup.list" -d "$ACTIVITY_PG_DSN" \
    "$WORK/backup.dump"
load_chunks 8 11 1

wait_until 30 "the lost months reported" \
    'grep -q "evicted months of prefix .* are in neither" "$WORK/run.log"'
grep -q "postgres went back in time" "$WORK/run.log" || fail "the rollback was not reported"
line=$(grep -m1 "evicted months of prefix .* are in neither" "$WORK/run.log")
echo "$line" | cut -c1-400 >&2
echo "$line" | grep -q " error " || fail "not reported as an error"
cmd=$(echo "$line" | grep -o 'activity backfill --from [0-9-]* --to [0-9-]*') || fail "no backfill command in: $line"
[ "$cmd" = "activity backfill --from 2023-01 --to 2023-04" ] || fail "wrong command: $cmd"
wait_until 20 "activity_evicted_months_lost 3" '[ "$(metric activity_evicted_months_lost)" = 3 ]'
ready=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$METRICS_PORT/readyz")
say "/readyz: $ready"
[ "${ready##* }" = 503 ] || fail "/readyz is not 503 while months are lost"
echo "$ready" | grep -q "activity backfill --from 2023-01 --to 2023-04" || fail "/readyz does not name the backfill"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/healthz")" = 200 ] ||
    fail "/healthz is not 200: a restart would not rebuild the months"
# The loss is real: February's rows were not in the dump, and nothing wrote them since.
[ "$(psql_test -tAc "SELECT count(*) FROM host_activity_reduced WHERE month_start = '2023-02-01'")" = 0 ] ||
    fail "February has rows after the restore: nothing was lost, the test proves nothing"
wait_until 30 "the automatic rebuild started" 'grep -q "rebuilding the lost months \[2023-01, 2023-04) from the topics automatically" "$WORK/run.log"'
wait_until 60 "the first automatic rebuild failed" 'grep -q "automatic rebuild of the lost months \[2023-01, 2023-04) failed" "$WORK/run.log"'
grep -q "another activity backfill --from/--to of prefix '$PREFIX' is running" "$WORK/run.log" ||
    fail "the failed rebuild did not say why"
[ "$(metric activity_evicted_months_lost)" = 3 ] || fail "the gauge changed after a failed rebuild"
[ "$(psql_test -tAc "SELECT count(*) FROM host_activity_reduced WHERE month_start = '2023-02-01'")" = 0 ] ||
    fail "February has rows after a failed rebuild"
# The open months go on: wait until May .. June are flushed as the reference has them.
open_ok() {
    [ "$(psql_test -tAc "SELECT count(*) FROM (SELECT host, month_start, hit_array FROM host_activity_reduced
        WHERE month_start >= '2023-04-01' EXCEPT SELECT host, month_start, hit_array
        FROM expected_host_activity_reduced) d")" = 0 ] &&
        [ "$(psql_test -tAc "SELECT count(*) FROM host_activity_reduced WHERE month_start = '2023-06-01'")" -gt 0 ]
}
wait_until 60 "April .. June flushed as the reference" open_ok

say "releasing the lock: the retry must rebuild the months"
psql_test -tAc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE application_name = 'it_backfill_lock'" >/dev/null
wait_until 90 "the automatic rebuild done" 'grep -q "automatic rebuild of the lost months \[2023-01, 2023-04) done" "$WORK/run.log"'
grep -q "3 of the evicted months postgresql lost were rebuilt" "$WORK/run.log" ||
    fail "the backfill did not forget the lost months"
wait_until 30 "activity_evicted_months_lost back to 0" '[ "$(metric activity_evicted_months_lost)" = 0 ]'
wait_until 10 "/readyz back to 200" \
    '[ "$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$METRICS_PORT/readyz")" = 200 ]'
grep -q "months postgresql lost have all been rebuilt" "$WORK/run.log" || fail "no all-rebuilt line"
kill -TERM "$proc"
wait "$proc" || {
    tail -30 "$WORK/run.log" >&2
    fail "the processor did not exit 0 on SIGTERM"
}
# The rebuilt months and the open ones, as the live processor left them.
compare_tables -v uv_tolerance_pct=0
say "ok"
