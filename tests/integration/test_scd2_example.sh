#!/usr/bin/env bash
# test_scd2_example.sh — README's worked example of the SCD2 rules, checked literally.
#
# Device 42's changes arrive in three batches, out of order, with a repeat, a type 1 change
# (device_type is not tracked here), a late change that lands between two stored versions, a
# tombstone and a comeback; each batch is processed (and flushed) before the next arrives.
# Device 43 is deleted by a bare Kafka tombstone (null value, no time header: its Kafka
# timestamp counts). User 7 arrives as nested JSON and is deleted through `load`.
source "$(dirname "$0")/lib.sh"

FLAGS=(--dim-devices-track browser_type,os_type --flush-interval 1)
HEADER=device_id,browser_type,os_type,device_type,updated_at,deleted
batch() { # name, CSV lines...
    local name=$1
    shift
    printf '%s\n' "$HEADER" "$@" >"$WORK/$name.csv"
    "$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$WORK/$name.csv" 2>/dev/null
    "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up "${FLAGS[@]}" \
        2>"$WORK/$name.log" || {
        cat "$WORK/$name.log"
        fail "run after $name exited non-zero"
    }
}
rows() {
    psql_test -tA -F' | ' -c "SET TimeZone = 'UTC'" -c "
        SELECT browser_type, os_type, device_type, valid_from::date, valid_to::date, is_current
        FROM dim_devices WHERE device_id = 42 ORDER BY valid_from"
}
expect() { # what, expected rows
    local got
    got=$(rows)
    [ "$got" = "$2" ] || fail "$1: expected
$2
got
$got"
}

batch b1 \
    "42,Chrome,Windows,Desktop,2023-01-01 00:00:00," \
    "42,Firefox,Windows,Desktop,2023-03-01 00:00:00," \
    "42,Firefox,Windows,Desktop,2023-03-01 00:00:00," \
    "43,Safari,iOS,iPhone,2023-01-01 00:00:00,"
expect "after batch 1" "Chrome | Windows | Desktop | 2023-01-01 | 2023-03-01 | f
Firefox | Windows | Desktop | 2023-03-01 |  | t"
sk_first=$(psql_test -tAc "SELECT device_sk FROM dim_devices WHERE device_id = 42 ORDER BY valid_from LIMIT 1")

batch b2 \
    "42,Chrome,Windows,Laptop,2023-02-01 00:00:00," \
    "42,Firefox,Windows,Laptop,2023-04-01 00:00:00," \
    "42,Edge,Windows,Desktop,2023-02-15 00:00:00,"
expect "after batch 2" "Chrome | Windows | Laptop | 2023-01-01 | 2023-02-15 | f
Edge | Windows | Laptop | 2023-02-15 | 2023-03-01 | f
Firefox | Windows | Laptop | 2023-03-01 |  | t"
[ "$(psql_test -tAc "SELECT device_sk FROM dim_devices WHERE device_id = 42 ORDER BY valid_from LIMIT 1")" = "$sk_first" ] ||
    fail "the first version lost its surrogate key when its end was re-stitched"

printf '43:\n' | kcat -b "$ACTIVITY_KAFKA_BROKERS" -P -t "$T_DEVICES" -K: -Z
batch b3 \
    "42,,,,2023-05-01 00:00:00,true" \
    "42,Firefox,Windows,Laptop,2023-06-01 00:00:00,"
expect "after batch 3" "Chrome | Windows | Laptop | 2023-01-01 | 2023-02-15 | f
Edge | Windows | Laptop | 2023-02-15 | 2023-03-01 | f
Firefox | Windows | Laptop | 2023-03-01 | 2023-05-01 | f
Firefox | Windows | Laptop | 2023-06-01 |  | t"
grep -q "2 tombstones" "$WORK/b3.log" || fail "the two tombstones were not counted"
[ "$(psql_test -tAc "SELECT count(*) FROM dim_devices WHERE device_id = 43 AND NOT is_current
                      AND valid_to > now() - interval '1 hour'")" = 1 ] ||
    fail "device 43 was not closed at its tombstone's Kafka timestamp"

cat >"$WORK/users.jsonl" <<'EOF'
{"user_id": 7, "name": {"first": "Ana", "last": "Silva", "title": "Dr"}, "address": {"street": "1 Rua Augusta", "city": "Lisbon", "state": "Lisboa", "country": "Portugal", "zip": "1100"}, "contact": {"type": "email", "value": "ana@example.com"}, "updated_at": "2023-01-01 00:00:00"}
{"user_id": 7, "name": {"first": "Ana", "last": "Silva", "title": "Dr"}, "address": {"street": "9 Main St", "city": "Austin", "state": "TX", "country": "United States", "zip": "78701"}, "contact": {"type": "email", "value": "ana@example.com"}, "updated_at": "2023-02-01 00:00:00"}
{"user_id": 7, "updated_at": "2023-03-01 00:00:00", "deleted": true}
EOF
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" "$WORK/users.jsonl" 2>/dev/null
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up "${FLAGS[@]}" \
    2>"$WORK/u.log" || fail "user run exited non-zero"
got=$(psql_test -tA -F' | ' -c "SET TimeZone = 'UTC'" -c "
    SELECT city, valid_from::date, valid_to::date, is_current FROM dim_users
    WHERE user_id = 7 ORDER BY valid_from")
[ "$got" = "Lisbon | 2023-01-01 | 2023-02-01 | f
Austin | 2023-02-01 | 2023-03-01 | f" ] || fail "user 7: got
$got"
say "ok"
