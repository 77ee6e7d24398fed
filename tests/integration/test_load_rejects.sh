#!/usr/bin/env bash
# test_load_rejects.sh — `activity load` exit statuses: with rejected lines
# it exits 3 unless --max-rejects allows them, and the valid lines are
# loaded either way; --dry-run produces nothing (the topic is not even
# created) yet exits as the real load would; progress shows on stderr for
# an input that takes longer than --progress.
source "$(dirname "$0")/lib.sh"

# load_status TOPIC ARGS... : runs load, prints its exit status.
load_status() {
    local topic=$1
    shift
    local rc=0
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$topic" "$@" 2>>"$WORK/load.log" || rc=$?
    echo "$rc"
}
expect() { [ "$2" = "$3" ] || fail "$1: expected $3, got $2"; }

# One good line and three rejected ones (the issue's "3 of 4").
cat >"$WORK/mixed.csv" <<'CSV'
url,referrer,user_id,device_id,host,event_time
/a,,1,2,a.example,2023-01-01 00:00:01.000000
/b,,not-a-number,2,b.example,2023-01-01 00:00:02.000000
/c,,3,4,c.example,not-a-time
too,few,fields
CSV
head -2 "$WORK/mixed.csv" >"$WORK/clean.csv"

expect "3 rejects, default --max-rejects 0" "$(load_status "$T_EVENTS" "$WORK/mixed.csv")" 3
expect "records in the topic after it" "$(topic_count "$T_EVENTS")" 1
expect "--max-rejects 2 < 3 rejects" "$(load_status "$T_EVENTS" --max-rejects 2 "$WORK/mixed.csv")" 3
expect "records after it" "$(topic_count "$T_EVENTS")" 2
expect "--max-rejects 3" "$(load_status "$T_EVENTS" --max-rejects 3 "$WORK/mixed.csv")" 0
expect "records after it" "$(topic_count "$T_EVENTS")" 3
expect "clean input" "$(load_status "$T_EVENTS" "$WORK/clean.csv")" 0
expect "records after it" "$(topic_count "$T_EVENTS")" 4
expect "usage error" "$(load_status "$T_EVENTS" --max-rejects -1 "$WORK/clean.csv")" 2
say "exit 3 with rejects over --max-rejects, 0 within; valid lines loaded either way"

DRY=it.$RUN_ID.dry
expect "--dry-run with rejects" "$(load_status "$DRY" --dry-run "$WORK/mixed.csv")" 3
expect "--dry-run --max-rejects 3" "$(load_status "$DRY" --dry-run --max-rejects 3 "$WORK/mixed.csv")" 0
grep -q "dry run: 1 records valid (rejected 3)" "$WORK/load.log" || fail "no dry-run summary"
if kcat -b "$ACTIVITY_KAFKA_BROKERS" -L -t "$DRY" 2>/dev/null | grep -q "topic \"$DRY\" with [1-9]"; then
    fail "--dry-run created $DRY"
fi
# Even with no broker at all.
expect "--dry-run without Kafka" \
    "$(load_status "$DRY" --dry-run --brokers 127.0.0.1:1 --broker-timeout 1 "$WORK/clean.csv")" 0
say "--dry-run validates without producing (or reaching Kafka)"

python3 "$ROOT/scripts/gen_events.py" --events 300000 --seed 9 --out "$WORK/big.csv"
: >"$WORK/load.log"
expect "large load" "$(load_status "$T_EVENTS" --progress 0.2 "$WORK/big.csv")" 0
progress=$(grep -c "big.csv: at line [0-9]*, [0-9]* records produced" "$WORK/load.log" || true)
[ "$progress" -ge 1 ] || {
    cat "$WORK/load.log" >&2
    fail "no progress lines for a 300,000-line load"
}
say "$progress progress lines for 300,000 lines"
