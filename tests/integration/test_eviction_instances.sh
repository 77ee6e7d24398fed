#!/usr/bin/env bash
# test_eviction_instances.sh — eviction with two instances of one consumer
# group. Both run with --evict-closed-months, small batches and a short
# flush interval over twelve months (2023-01 .. 2023-12) streamed in order,
# in 24 half-month chunks, so a month closes every few seconds and either
# instance's flush may evict it while the other's flush is between taking
# its dirty markers and reading their state. Instance A sleeps there
# (ACTIVITY_DELAYPOINT=flush-before-reads): meanwhile B's flush takes the
# same markers over, commits, and evicts the month, so A then finds
# host-months and user-months gone. They must be recognised as evicted by
# the other instance (final in PostgreSQL: left out, counted), never as
# lost state, which would start a rebuild from the topics (README
# "Lateness and eviction").
#
# A third of the devices first used in a month are withheld from the
# devices topic until that month's first half has streamed: their users
# wait for them (waiting entries) and are resolved by a later flush of
# either instance, still before the month closes, so the tables equal the
# plain-SQL reference exactly.
source "$(dirname "$0")/lib.sh"

rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
PER_MONTH=${IT_EVICT_INSTANCES_EVENTS:-2500}
mkdir -p "$WORK/chunks" "$WORK/devices"
say "generating 12 months of $PER_MONTH events in 24 chunks, devices withheld per month"
python3 - "$ROOT" "$WORK" "$PER_MONTH" "$DEVICES" <<'PY'
import csv, sys
root, work, n, devices = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, f"{root}/tests/integration")
from months import gen_months
header, rows = gen_months(root, work, n, 12, 700)
chunks = []
for month in rows:
    half = len(month) // 2
    chunks += [month[:half], month[half:]]
# Late events: a month's last day arrives mixed into the next month's first
# three days (within the default 3-day allowed lateness, so before the month
# closes), so its dirty markers are still being flushed when it closes.
import random
rnd = random.Random(7)
late_devices = set()  # devices of those late events: their month closes mid-chunk
for c in range(2, 24, 2):
    prev, cur = chunks[c - 1], chunks[c]
    last_day = max(r[5][:10] for r in prev)
    moved = [r for r in prev if r[5][:10] == last_day]
    chunks[c - 1] = [r for r in prev if r[5][:10] != last_day]
    k = sum(1 for r in cur if int(r[5][8:10]) <= 3)
    early = cur[:k]
    for r in moved:
        early.insert(rnd.randrange(len(early) + 1), r)
    chunks[c] = early + cur[k:]
    late_devices.update(r[3] for r in moved)
for c, part in enumerate(chunks):
    with open(f"{work}/chunks/part{c:03d}.csv", "w", newline="") as f:
        csv.writer(f).writerows([header] + part)
with open(f"{work}/events.csv", "w", newline="") as f:
    csv.writer(f).writerows([header] + [r for part in chunks for r in part])
# A device first used in the first half of month i >= 1 (and a third of
# them: id % 3 == 0) is withheld until that half has streamed, unless a
# late event of month i - 1 uses it (that month closes within the half).
first = {}
for c, part in enumerate(chunks):
    for r in part:
        if r[3]:
            first.setdefault(r[3], c)
with open(devices, newline="") as f:
    r = csv.reader(f)
    dh = next(r)
    devs = list(r)
late = {c: [] for c in range(24)}
early = []
for d in devs:
    c = first.get(d[0])
    if (c is not None and c >= 2 and c % 2 == 0 and int(d[0]) % 3 == 0 and
            d[0] not in late_devices):
        late[c].append(d)
    else:
        early.append(d)
with open(f"{work}/devices/early.csv", "w", newline="") as f:
    csv.writer(f).writerows([dh] + early)
for c, ds in late.items():
    if ds:
        with open(f"{work}/devices/after{c:03d}.csv", "w", newline="") as f:
            csv.writer(f).writerows([dh] + ds)
print(f"[test_eviction_instances] {sum(len(v) for v in late.values())} devices withheld",
      file=sys.stderr)
PY
load_reference "$WORK/events.csv" "$DEVICES"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$WORK/devices/early.csv" 2>/dev/null
load_chunks 0 0 0

# The stream: each chunk, then the devices withheld until it has streamed.
stream() {
    local c f
    for c in $(seq 1 23); do
        load_chunks "$c" "$c" 0
        f=$(printf '%s/devices/after%03d.csv' "$WORK" "$c")
        [ -f "$f" ] && "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$f" 2>/dev/null
        sleep 2
    done
}
stream &
LOADER_PID=$!

FLAGS=(--verbose --group "it$RUN_ID" --evict-closed-months --batch-size 500 --flush-interval 0.2)
ACTIVITY_DELAYPOINT=flush-before-reads:1 "$ACTIVITY" run "${TOPIC_FLAGS[@]}" "${FLAGS[@]}" \
    2>"$WORK/a.log" &
a=$!
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" "${FLAGS[@]}" 2>"$WORK/b.log" &
b=$!
wait "$LOADER_PID"
sleep 4
kill -TERM "$a" "$b"
for m in a b; do
    wait "${!m}" || {
        tail -20 "$WORK/$m.log" >&2
        fail "instance $m exited non-zero"
    }
done
run_until_caught_up "$WORK/last.log" "${FLAGS[@]}"

evictions=$({ grep -h "evicted .* closed (key group, month) states" "$WORK"/{a,b}.log || true; } |
    awk '{ n += $5 } END { print n + 0 }')
skipped=$({ grep -h "another instance evicted their month" "$WORK"/{a,b}.log || true; } |
    awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "host" || $(i + 1) == "user") n += $i }
         END { print n + 0 }')
say "evictions: $evictions (key group, month) states; entities left out as evicted by the other: $skipped"
grep -h "another instance evicted their month" "$WORK"/{a,b}.log | head -3 | cut -c1-200 >&2 || true
if grep -hE "redis lost the state|lacks the state|dirty but have no state|rebuild" \
    "$WORK"/{a,b,last}.log >"$WORK/lost.txt"; then
    head -5 "$WORK/lost.txt" | cut -c1-240 >&2
    fail "an instance took eviction for lost state"
fi
[ "$evictions" -ge 11 ] || fail "fewer than 11 (group, month) evictions ($evictions)"
[ "$skipped" -ge 1 ] || fail "no flush met another instance's eviction: the race was not exercised"
grep -q "delay point flush-before-reads" "$WORK/a.log" || fail "instance A never delayed a flush"
compare_tables -v uv_tolerance_pct=0
# January .. November closed: their state is gone from Redis.
[ -z "$(rcli --scan --pattern "$PREFIX:{*}:[hsup]:2023*" | grep -v ':20231[2]' | head -1)" ] ||
    fail "state of closed months is still in redis"
say "ok"
