#!/usr/bin/env bash
# test_year.sh — a simulated year: 13 months of events (2023-01 .. 2024-01),
# streamed one month after another in weekly chunks to a running processor
# with --evict-closed-months, small batches and a short flush interval (so
# it flushes many times per simulated week, about once per simulated day).
# Closed months are evicted, so Redis memory (INFO memory used_memory)
# stays flat: the peak while month 13 streams is within 1.5x the peak while
# month 2 streams. Every sink row equals the plain-SQL reference.
#
# Late events: once January is evicted, events for it arrive 1 day and 2
# weeks after it closed, and once the stream is in August, events for
# January and February arrive (6 months late). Their hosts and users are
# brought back from PostgreSQL (README "Lateness and eviction"), the events
# applied, the months flushed and evicted again: the reference is computed
# over every event, late ones included, and the counters
# (activity_late_events_total, activity_rehydrations_total) must show them.
# The late events mix hosts and users the month already had with new ones,
# on days that had events and days that had none.
source "$(dirname "$0")/lib.sh"

rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
PER_MONTH=${IT_YEAR_EVENTS_PER_MONTH:-6000}
# IT_YEAR_EVICT=0 runs the same stream with --keep-closed-months, the
# default (a control: the memory check must then fail).
EVICT_FLAG=(--evict-closed-months)
[ "${IT_YEAR_EVICT:-1}" = 1 ] || EVICT_FLAG=(--keep-closed-months)
METRICS_PORT=$((20000 + RANDOM % 20000))

say "generating 13 months of $PER_MONTH events, split into weekly chunks"
mkdir -p "$WORK/chunks"
python3 - "$ROOT" "$WORK" "$PER_MONTH" "$DEVICES" <<'PY'
import csv, sys
root, work, n, devices_csv = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, f"{root}/tests/integration")
from months import gen_months
rows = []
with open(devices_csv, newline="") as f:
    r = csv.reader(f)
    dev_header = next(r)
    devices = {row[0]: row for row in r}
header, months = gen_months(root, work, n, 13, 300)
for i, month in enumerate(months):
    if i == 0:
        # Devices described late: every 50th January event moves to one of 30
        # devices nobody has described yet; they are described once January
        # is evicted ("late_devices"), with 10 devices January used whose
        # browser then changes. The reference joins with the final states.
        for k in range(0, len(month), 50):
            month[k][3] = str(990000000 + (k // 50) % 30)
        changed = []
        for row in month:
            if row[3] in devices and row[3] not in changed:
                changed.append(row[3])
            if len(changed) == 10:
                break
        late_devs = [[str(990000000 + k), f"LateBrowser-{k % 4}", "Linux", "Other"] for k in range(30)]
        for d in changed:
            late_devs.append([d, "Changed-" + devices[d][1]] + devices[d][2:])
            devices[d] = late_devs[-1]
        for row in late_devs[:30]:
            devices[row[0]] = row
        with open(f"{work}/late_devices.csv", "w", newline="") as f:
            csv.writer(f).writerows([dev_header] + late_devs)
        with open(f"{work}/ref_devices.csv", "w", newline="") as f:
            csv.writer(f).writerows([dev_header] + list(devices.values()))
    # Weekly chunks: days 1-7, 8-14, 15-21, 22-end.
    for w in range(4):
        lo, hi = 7 * w + 1, 7 * w + 7 if w < 3 else 31
        part = [row for row in month if lo <= int(row[5][8:10]) <= hi]
        with open(f"{work}/chunks/c{i:02d}w{w}.csv", "w", newline="") as f:
            c = csv.writer(f)
            c.writerow(header)
            c.writerows(part)
    rows += month
with open(f"{work}/all.csv", "w", newline="") as f:
    c = csv.writer(f)
    c.writerow(header)
    c.writerows(rows)
# Late events, taken from real rows (their users, devices, hosts) with new
# times: "late1" for 2023-01-31 (sent 1 day after January closed), "late2"
# for 2023-01-20 (sent 2 weeks after), "late3" for January and February
# (sent in August, 6 months late). Rows are taken from across the year, so
# some users and hosts are new to the month they land in; "late3b" brings
# a host name January never had, and "late3c" one host-day of January with
# 1,500 new users (its sketch comes back as registers, not an exact set).
lates = []
def late(name, stamps, host=None, user=None):
    with open(f"{work}/chunks/{name}.csv", "w", newline="") as f:
        c = csv.writer(f)
        c.writerow(header)
        for k, t in enumerate(stamps):
            row = list(rows[(k * 37 + len(lates) * 1009) % len(rows)])
            row[5] = t
            if host:
                row[4] = host
            if user:
                row[2] = str(user + k)
            c.writerow(row)
            lates.append(row)
late("late1", [f"2023-01-31 2{k % 4}:00:00" for k in range(200)])
late("late2", [f"2023-01-20 1{k % 10}:00:00" for k in range(200)])
late("late3", [f"2023-0{1 + k % 2}-{10 + k % 19} 08:00:00" for k in range(400)])
late("late3b", [f"2023-02-1{k % 3} 09:00:00" for k in range(20)], host="late.new-host.example")
late("late3c", ["2023-01-15 12:00:00"] * 1500, host=rows[0][4], user=900000000)
with open(f"{work}/all.csv", "a", newline="") as f:
    csv.writer(f).writerows(lates)
PY
# The reference: every event, late ones included.
load_reference "$WORK/all.csv" "$WORK/ref_devices.csv"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/chunks/c00w0.csv" 2>/dev/null

"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" "${EVICT_FLAG[@]}" \
    --batch-size 300 --flush-interval 0.1 --metrics-addr "127.0.0.1:$METRICS_PORT" \
    2>"$WORK/run.log" &
PROC=$!

# A month's state is gone once no key list k:<YYYYMM> is left and some key
# group records it evicted.
evicted() {
    [ -z "$(rcli --scan --pattern "$PREFIX:{*}:k:$1")" ] || return 1
    for g in $(seq 0 63); do
        [ "$(rcli SISMEMBER "$PREFIX:{$g}:evicted" "$1")" = 1 ] && return 0
    done
    return 1
}
wait_evicted() {
    for _ in $(seq 1 150); do
        evicted "$1" && return 0
        kill -0 "$PROC" 2>/dev/null || fail "the processor died"
        sleep 0.2
    done
    tail -20 "$WORK/run.log" >&2
    fail "month $1 was not evicted within 30 s"
}
load() {
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/chunks/$1.csv" 2>/dev/null
}
used_memory() { rcli INFO memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
# Waits until the processor has applied everything in the events topic.
settle() {
    local total
    total=$(topic_count "$T_EVENTS")
    for _ in $(seq 1 150); do
        applied=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
            awk -v t="$T_EVENTS" '$1 ~ /^activity_records_applied_total/ && index($1, t) {s += $2} END {print s + 0}')
        [ "$applied" -ge "$total" ] && return 0
        sleep 0.2
    done
    fail "the processor did not apply $total events within 30 s"
}

for i in $(seq 0 12); do
    for w in 0 1 2 3; do
        [ "$i$w" = 00 ] || load "$(printf 'c%02dw%d' "$i" "$w")"
        settle
        echo "$i $(used_memory)" >>"$WORK/memory"
        if [ "${IT_YEAR_EVICT:-1}" != 1 ]; then
            continue
        elif [ "$i$w" = 10 ]; then
            # Feb 1-7 streamed: January closed (watermark past Feb 1).
            wait_evicted 202301
            say "January evicted; devices it used described or changed; events 1 day after it closed"
            "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$WORK/late_devices.csv" 2>/dev/null
            load late1
        elif [ "$i$w" = 12 ]; then
            say "events for January 2 weeks after it closed"
            load late2
        elif [ "$i$w" = 73 ]; then
            wait_evicted 202302
            say "August: events for January and February, 6 months late"
            load late3
            load late3b
            load late3c
        fi
    done
done
settle
sleep 1
metrics=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics")
kill -TERM "$PROC"
wait "$PROC" || {
    tail -30 "$WORK/run.log" >&2
    fail "the processor did not exit 0 on SIGTERM"
}
echo "$metrics" | grep -E "^activity_(late|rehydrations|month_evictions)" >&2 || true
if [ "${IT_YEAR_EVICT:-1}" != 1 ]; then
    python3 - "$WORK/memory" <<'PY'
import sys
peak = {}
for line in open(sys.argv[1]):
    m, v = line.split()
    peak[int(m)] = max(peak.get(int(m), 0), int(v))
print("[test_year] control, no eviction: peak used_memory per month:", [peak[m] for m in sorted(peak)], file=sys.stderr)
PY
    exit 0
fi
counter() { echo "$metrics" | awk -v n="$1" '$1 == n {print int($2)}'; }
[ "$(counter activity_late_events_total)" -ge 2320 ] || fail "the 2,320 late events were not counted"
[ "$(counter activity_rehydrations_total)" -ge 100 ] ||
    fail "fewer than 100 hosts and users of evicted months were brought back"
grep -q "late events for 202301, which was evicted" "$WORK/run.log" ||
    fail "the log does not say January was brought back"
grep -q "devices described or changed after month 202301 was evicted" "$WORK/run.log" ||
    fail "the log does not say January's users of late devices were brought back"
# What a rehydration cost (README "Cost of a very late event").
grep "which was evicted: brought back" "$WORK/run.log" | sed 's/.*evicted: /[test_year] /' |
    awk '{n++; ms += $(NF-4)} END {if (n) printf "[test_year] %d rehydrations by (month, key group), %.1f ms each on average\n", n, ms / n}' >&2
grep "which was evicted: brought back" "$WORK/run.log" | sed 's/.*late events for /[test_year] slowest: /' | sort -t' ' -k16 -g | tail -3 >&2
[ "$(counter activity_month_evictions_total)" -ge 12 ] || fail "fewer than 12 evictions"

python3 - "$WORK/memory" <<'PY' || fail "redis memory grew with the months"
import sys
peak = {}
for line in open(sys.argv[1]):
    m, v = line.split()
    peak[int(m)] = max(peak.get(int(m), 0), int(v))
print("[test_year] peak used_memory per month:", [peak[m] for m in sorted(peak)], file=sys.stderr)
if peak[12] > 1.5 * peak[1]:
    sys.exit(f"month 13 peaked at {peak[12]} bytes, month 2 at {peak[1]}: more than 1.5x")
PY
left=$(rcli --scan --pattern "$PREFIX:{*}:k:2023*" | wc -l)
[ "$left" = 0 ] || fail "$left key lists of 2023 months are still in redis"
compare_tables -v uv_tolerance_pct=0
say "ok"
