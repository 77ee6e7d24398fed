#!/usr/bin/env bash
# skew_case.sh SEED SHAPES SCALE [EVENTS] — one differential run over adversarial traffic.
#
# Generates a month of events (seeded) with the skew shapes of scripts/gen_events.py
# (SHAPES: comma-separated or "all"; SCALE sizes them), loads them with the real devices
# plus the shapes' synthetic ones (hundreds of browser types), runs the processor until
# caught up and compares every sink row with the plain-SQL reference: hits, datelists and
# datelist_int exactly, and the daily sketches byte for byte with the extension's, unique
# visitors equal to their cardinality. With the browser-changes shape, devices change browser or are
# first described only after a first run has flushed their users' rows. Also sends a host and a browser type one byte over
# --max-key-bytes and checks that they are dead letters, not rows and not a stalled flush.
# Run by test_skew.sh (fixed seeds, in make test) and scripts/soak.sh (random seeds).
source "$(dirname "$0")/lib.sh"

SEED=${1:?seed} SHAPES=${2:?shapes} SCALE=${3:?scale} EVENTS=${4:-20000}
# The sketches' EXPLICIT threshold (lib/hll.h): hot-host days at exactly 1,280 users and one past.
LIMIT=${SKEW_EXACT_LIMIT:-1280}
KEY_BYTES=${SKEW_MAX_KEY_BYTES:-2048}
# SKEW_RUN_FLAGS: more `activity run` flags (the soak varies --batch-size).
say "seed $SEED, shapes $SHAPES, scale $SCALE, $EVENTS base events, exact limit $LIMIT"

python3 "$ROOT/scripts/gen_events.py" --events "$EVENTS" --seed "$SEED" --users 8000 \
    --skew "$SHAPES" --skew-scale "$SCALE" --exact-limit "$LIMIT" \
    --max-key-bytes "$KEY_BYTES" --devices-out "$WORK/devices.csv" --out "$WORK/events.csv" \
    --devices-phase1-out "$WORK/devices1.csv" --devices-phase2-out "$WORK/devices2.csv"

# One host and one browser type a byte over the key limit: dead letters with their reason.
python3 - "$WORK" "$KEY_BYTES" <<'PY'
import csv, sys
work, limit = sys.argv[1], int(sys.argv[2])
with open(work + "/over_events.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(("url", "referrer", "user_id", "device_id", "host", "event_time"))
    w.writerow(("/", "", 77, 88, "é" * (limit // 2) + "x", "2023-01-05 10:00:00.000000"))
with open(work + "/over_devices.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(("device_id", "browser_type", "os_type", "device_type"))
    w.writerow((99_999_999_999, "b" * (limit + 1), "os", "type"))
PY

RUN_FLAGS=(--flush-interval 2 --exact-uniques-limit "$LIMIT" --max-key-bytes "$KEY_BYTES")
# shellcheck disable=SC2206 # a list of flags
RUN_FLAGS+=(${SKEW_RUN_FLAGS:-})
if [[ $SHAPES == all || $SHAPES == *browser-changes* ]]; then
    # Devices whose browser changes, or that are described at all, only after their events
    # were processed and flushed: a second run must move and complete the user rows.
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$WORK/devices1.csv" 2>/dev/null
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/events.csv" 2>/dev/null
    run_until_caught_up "$WORK/run1.log" "${RUN_FLAGS[@]}"
    grep -h "done:" "$WORK/run1.log" >&2
    before=$(psql_test -tAc "SELECT count(*) FROM user_devices_cumulated WHERE browser_type LIKE 'Before-%'")
    say "phase 1: $before user rows on the browsers that are about to change"
    [ "$before" -gt 0 ] || fail "phase 1 wrote no rows for the devices whose browser changes"
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$WORK/devices2.csv" "$WORK/over_devices.csv" 2>/dev/null
else
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$WORK/devices.csv" "$WORK/over_devices.csv" 2>/dev/null
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/events.csv" 2>/dev/null
fi
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/over_events.csv" 2>/dev/null
load_reference "$WORK/events.csv" "$WORK/devices.csv" >/dev/null
run_until_caught_up "$WORK/run.log" "${RUN_FLAGS[@]}"
grep -h "done:" "$WORK/run.log" >&2

# The heavy user must span more browser types than any fixed cap would hold, or this
# run would not prove anything about one.
if [[ $SHAPES == all || $SHAPES == *heavy-users* ]]; then
    read -r devs browsers < <(psql_test -tA -F ' ' -c "
        SELECT count(DISTINCT e.device_id), count(DISTINCT d.browser_type)
          FROM raw_events e JOIN raw_devices d USING (device_id)
         WHERE e.user_id = 7000000000000000000")
    rows=$(psql_test -tA -c "SELECT count(*) FROM user_devices_cumulated
        WHERE user_id = 7000000000000000000")
    say "heaviest user: $devs known devices, $browsers browser types, $rows rows"
fi

compare_tables

"$ACTIVITY" dlq list "${TOPIC_FLAGS[@]}" --json >"$WORK/dlq.jsonl" 2>/dev/null
python3 - "$WORK/dlq.jsonl" <<'PY' || fail "the over-limit host and browser type are not both dead letters"
import json, sys
reasons = sorted(json.loads(l)["reason"] for l in open(sys.argv[1]) if l.strip())
sys.exit(0 if reasons == ["oversized-key", "oversized-key"] else "dead letters: %r" % reasons)
PY
say "ok"
