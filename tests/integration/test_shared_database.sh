#!/usr/bin/env bash
# test_shared_database.sh — ownership of a shared database (issue 9). Two
# deployments, A and B (their own topics, --redis-prefix and --group),
# write disjoint months into one PostgreSQL database. Then:
#  - `backfill --reset` on A refuses, naming B's prefix: B's rows (and A's
#    Redis state) stay; so does one while a member of A's group is live;
#  - while A runs, an instance of A's group with B's prefix is refused;
#  - while A runs, A's prefix under another group is refused;
#  - of two instances of one group with different prefixes started at the
#    same instant, at most one stays (the check is repeated after joining);
#  - once A has stopped, that other group may take A's prefix over (as
#    test_replay.sh does), and the tables still equal the reference.
source "$(dirname "$0")/lib.sh"

B_FLAGS=(--events-topic "it.$RUN_ID.b.events" --devices-topic "it.$RUN_ID.b.devices"
    --profiles-topic "it.$RUN_ID.b.profiles" --dlq-topic "it.$RUN_ID.b.dlq" --redis-prefix "${PREFIX}b")
cleanup_b() { "$ROOT/scripts/redis_drop.sh" "${PREFIX}b" 2>/dev/null || true; }
trap 'rc=$?; cleanup_b; (exit $rc); cleanup' EXIT

say "deployment A: January, deployment B: June, one database"
python3 "$ROOT/scripts/gen_events.py" --events 20000 --month 2023-01 --seed 81 --out "$WORK/a.csv"
python3 "$ROOT/scripts/gen_events.py" --events 20000 --month 2023-06 --seed 82 --out "$WORK/b.csv"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/a.csv" 2>/dev/null
"$ACTIVITY" load "${B_FLAGS[@]}" --topic "it.$RUN_ID.b.devices" "$DEVICES" 2>/dev/null
"$ACTIVITY" load "${B_FLAGS[@]}" --topic "it.$RUN_ID.b.events" "$WORK/b.csv" 2>/dev/null
{ cat "$WORK/a.csv"; tail -n +2 "$WORK/b.csv"; } >"$WORK/both.csv"
load_reference "$WORK/both.csv" "$DEVICES"
run_until_caught_up "$WORK/a1.log"
"$ACTIVITY" backfill "${B_FLAGS[@]}" --group "it${RUN_ID}b" 2>"$WORK/b1.log" || fail "B's run failed"
compare_tables -v uv_tolerance_pct=0
before=$(tables_digest)
b_rows=$(psql_test -tAc "SELECT count(*) FROM hosts_cumulated WHERE month_start >= '2023-05-01'")
[ "$b_rows" -gt 0 ] || fail "B wrote no rows"

say "backfill --reset on A, while B's rows share the tables"
rc=0
"$ACTIVITY" backfill "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --reset 2>"$WORK/reset.log" || rc=$?
[ "$rc" != 0 ] || fail "backfill --reset deleted another deployment's rows and exited 0"
grep "refusing to reset" "$WORK/reset.log" >&2 || fail "no refusal message"
grep -q "'${PREFIX}b'" "$WORK/reset.log" || fail "the refusal does not name B's prefix"
[ "$(tables_digest)" = "$before" ] || fail "the refused reset changed the tables"
[ -n "$(redis-cli -u "$ACTIVITY_REDIS_URL" --scan --pattern "$PREFIX:*" | head -1)" ] ||
    fail "the refused reset deleted A's Redis state"

say "A runs; an instance of A's group with B's prefix must be refused"
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --flush-interval 1 2>"$WORK/a2.log" &
a_pid=$!
wait_for_log "$WORK/a2.log" "assigned"
rc=0
timeout 60 "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --redis-prefix "${PREFIX}b" --group "it$RUN_ID" \
    --until-caught-up 2>"$WORK/mixed.log" || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "an instance of A's group with B's prefix was not refused (exit $rc)"
grep "refusing to start" "$WORK/mixed.log" >&2 || fail "no refusal message"
grep -q "consumer group it$RUN_ID has a live member serving --redis-prefix '$PREFIX'" \
    "$WORK/mixed.log" || fail "the refusal does not name the group and the other prefix"

say "backfill --reset of A while A's group has a live member must be refused"
rc=0
timeout 60 "$ACTIVITY" backfill "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --reset \
    2>"$WORK/reset2.log" || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "a reset under a live member was not refused (exit $rc)"
grep -q "refusing to reset: consumer group it$RUN_ID has 1 live member" "$WORK/reset2.log" ||
    fail "the refusal does not name the live group"

say "A's prefix under a second group, while A runs, must be refused"
rc=0
timeout 60 "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it${RUN_ID}x" --until-caught-up \
    2>"$WORK/second.log" || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "a second group on A's prefix was not refused (exit $rc)"
grep "refusing to start" "$WORK/second.log" >&2 || fail "no refusal message"
grep -q "'$PREFIX' is being consumed by consumer group it$RUN_ID " "$WORK/second.log" ||
    fail "the refusal does not name the live group"
kill -0 "$a_pid" || fail "A died"
kill -TERM "$a_pid"
wait "$a_pid" || fail "A did not exit 0 on SIGTERM"
[ "$(tables_digest)" = "$before" ] || fail "the refused instances changed the tables"

say "two instances of one group with different prefixes started at the same instant"
# Whichever way the race goes, at most one may stay: the later one is refused
# at start, or, if neither was a member when the other checked, the check
# repeated 3 s after joining stops both. No flush is due (--flush-interval
# 1000) and a survivor is killed with SIGKILL, so nothing is written; the
# prefixes are fresh ones, C and D, so that nothing of A or B is at stake.
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --redis-prefix "${PREFIX}d" --group "it${RUN_ID}y" \
    --flush-interval 1000 2>"$WORK/race1.log" &
r1=$!
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --redis-prefix "${PREFIX}c" --group "it${RUN_ID}y" \
    --flush-interval 1000 2>"$WORK/race2.log" &
r2=$!
for _ in $(seq 1 40); do
    kill -0 "$r1" 2>/dev/null && kill -0 "$r2" 2>/dev/null || break
    sleep 0.5
done
sleep 8
alive=0
for pid in $r1 $r2; do
    if kill -0 "$pid" 2>/dev/null; then
        alive=$((alive + 1))
        kill -9 "$pid"
    fi
    wait "$pid" 2>/dev/null || true
done
"$ROOT/scripts/redis_drop.sh" "${PREFIX}c" >/dev/null 2>&1 || true
"$ROOT/scripts/redis_drop.sh" "${PREFIX}d" >/dev/null 2>&1 || true
refused=$(grep -l "has a live member serving --redis-prefix" "$WORK"/race?.log | wc -l)
say "$refused refused, $alive still running after the check"
[ "$alive" -le 1 ] || fail "both instances of one group with different prefixes kept running"
[ $((refused + alive)) = 2 ] || fail "an instance stopped without the refusal"
[ "$(tables_digest)" = "$before" ] || fail "the racing instances changed the tables"

say "A stopped: the second group may take the prefix over"
# A's last member released A's registration when it exited; a group
# registered for the prefix but without live members (as one killed long
# ago leaves) is forgotten at start.
[ "$(psql_test -tAc "SELECT count(*) FROM activity_consumer_groups
    WHERE prefix = '$PREFIX' AND group_id = 'it$RUN_ID'")" = 0 ] ||
    fail "A's clean exit did not release its registration"
psql_test -c "INSERT INTO activity_consumer_groups (prefix, group_id)
    VALUES ('$PREFIX', 'it${RUN_ID}gone')" >/dev/null
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it${RUN_ID}x" --until-caught-up \
    2>"$WORK/takeover.log" || fail "the second group was refused after A stopped"
grep -q "group it${RUN_ID}gone, which consumed .* has no live members: group it${RUN_ID}x takes over" \
    "$WORK/takeover.log" || fail "the stale registration was not forgotten"
[ "$(tables_digest)" = "$before" ] || fail "tables changed after the take-over"
compare_tables -v uv_tolerance_pct=0
say "ok"
