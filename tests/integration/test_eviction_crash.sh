#!/usr/bin/env bash
# test_eviction_crash.sh — kill -9 while closed months are evicted and
# brought back: 30 runs of a processor with --evict-closed-months over a
# stream of twelve months (2023-01 .. 2023-12, in order, arriving in chunks
# while it runs, so a month closes every few seconds) into which late
# events for months closed three to five months before are mixed (their
# hosts and users are rehydrated from PostgreSQL), each run killed: a
# third at random instants, the rest by SIGKILL at the eviction's
# failpoints (evict-before: key list read, script not run;
# evict-waiting-forgotten: waiting entries forgotten, no month evicted
# yet; evict-after: one group's month evicted, the others not), at the
# rehydration's (rehydrate-read: PostgreSQL read, nothing written;
# rehydrate-written: entities back in Redis, the late batch not applied)
# and at the flush's. A crash must leave a closed month's state or its
# committed rows, never neither, and replays must change nothing: at the
# end the tables equal the plain-SQL reference over every event exactly,
# and the closed months are gone from Redis.
source "$(dirname "$0")/lib.sh"

rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
PER_MONTH=${IT_EVICT_CRASH_EVENTS:-2500}
mkdir -p "$WORK/chunks"
say "generating 12 months of $PER_MONTH events in 24 chunks"
python3 - "$ROOT" "$WORK" "$PER_MONTH" <<'PY'
import csv, sys
root, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, f"{root}/tests/integration")
from months import gen_months
header, months = gen_months(root, work, n, 12, 500)
rows = [row for month in months for row in month]
with open(f"{work}/events.csv", "w", newline="") as f:
    csv.writer(f).writerows([header] + rows)
# Late events: from chunk 10 on (late May), 40 per chunk, copies of rows
# of earlier months (other users and hosts too) moved to a month 3 to 5
# months before the chunk's, some to a host that month never had.
k = len(rows) // 24
late_rows = []
for c in range(24):
    part = rows[c * k:(c + 1) * k if c < 23 else len(rows)]
    if c >= 10:
        month = c // 2 + 1 - 3 - c % 3
        for j in range(40):
            row = list(rows[(c * 131 + j * 53) % (10 * k)])
            row[5] = f"2023-{month:02d}-{1 + (j * 7 + c) % 28:02d} {10 + j % 12}:00:00"
            if j % 10 == 0:
                row[4] = f"late-{c}.example"
            part = part + [row]
            late_rows.append(row)
    with open(f"{work}/chunks/part{c:03d}.csv", "w", newline="") as f:
        csv.writer(f).writerows([header] + part)
with open(f"{work}/events.csv", "a", newline="") as f:
    csv.writer(f).writerows(late_rows)
PY
load_reference "$WORK/events.csv" "$DEVICES"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
load_chunks 0 0 0
load_chunks 1 23 2 &
LOADER_PID=$!

FLAGS=(--instance-id "evict-$RUN_ID" --evict-closed-months --batch-size 2000 --flush-interval 0.2)
points=(evict-before evict-waiting-forgotten evict-after rehydrate-read rehydrate-written
    flush-after-commit)
next=0
for i in $(seq 1 30); do
    if ((i % 3 == 0)); then
        crash_random 0.5 2.0 "${FLAGS[@]}"
    else
        crash_at "${points[$((next++ % ${#points[@]}))]}" $((RANDOM % 2 + 1)) 60 "${FLAGS[@]}"
    fi
    say "crash $i: $CRASH_HOW"
done
fired=$(grep -c "failpoint evict-.* reached" "$WORK/crash.log" || true)
say "$fired eviction failpoints fired"
[ "$fired" -ge 5 ] || fail "fewer than 5 kills inside the eviction"
rfired=$(grep -c "failpoint rehydrate-.* reached" "$WORK/crash.log" || true)
say "$rfired rehydration failpoints fired"
[ "$rfired" -ge 2 ] || fail "fewer than 2 kills inside a rehydration"
wait "$LOADER_PID"
say "final run"
run_until_caught_up "$WORK/final.log" "${FLAGS[@]}"
compare_tables -v uv_tolerance_pct=0
# January .. November closed (the stream ends in December): their state is gone.
left=$(rcli --scan --pattern "$PREFIX:{*}:k:2023[01][0-9]" | grep -vc ':k:202312$' || true)
[ "$left" = 0 ] || fail "$left key lists of closed months are still in redis"
[ -z "$(rcli --scan --pattern "$PREFIX:{*}:[hsup]:2023*" | grep -v ':20231[2]' | head -1)" ] ||
    fail "state of closed months is still in redis"
say "ok"
