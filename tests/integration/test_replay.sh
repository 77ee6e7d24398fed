#!/usr/bin/env bash
# test_replay.sh — replaying the same records changes nothing: after a
# complete run, the group's offsets are reset to the beginning and the
# processor runs again, then a brand-new consumer group runs over the same
# topics; the tables stay identical to the byte (and equal the reference).
# Then `activity backfill --reset` rebuilds every table from the topics and
# gets the same bytes, and `activity report --month` shows the busiest host.
source "$(dirname "$0")/lib.sh"

say "setting up 200000 events"
setup_month 200000 51
run_until_caught_up "$WORK/run1.log"
compare_tables -v uv_tolerance_pct=0
before=$(tables_digest)

say "resetting the group's offsets to the beginning"
ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" kafka-groups --reset-offsets --to-earliest \
    --execute --group "it$RUN_ID" --all-topics >/dev/null
run_until_caught_up "$WORK/run2.log"
[ "$(tables_digest)" = "$before" ] || fail "tables changed after replaying with reset offsets"

say "replaying with a new consumer group"
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID-other" --until-caught-up 2>"$WORK/run3.log" ||
    fail "run with a new group failed"
[ "$(tables_digest)" = "$before" ] || fail "tables changed after replaying with a new group"
compare_tables -v uv_tolerance_pct=0

say "rebuilding everything from the topics: activity backfill --reset"
"$ACTIVITY" backfill "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --reset 2>"$WORK/run4.log" ||
    fail "backfill --reset failed"
grep -q "deleted [0-9]* redis keys" "$WORK/run4.log" || fail "backfill --reset deleted no state"
[ "$(tables_digest)" = "$before" ] || fail "the rebuilt tables differ"

"$ACTIVITY" report --month 2023-01 --limit 3 >"$WORK/report.txt" || fail "activity report failed"
busiest=$(psql_test -tAc "SELECT host FROM host_activity_reduced WHERE month_start = '2023-01-01'
    ORDER BY (SELECT sum(h) FROM unnest(hit_array) h) DESC LIMIT 1")
grep -q "^activity report for 2023-01 " "$WORK/report.txt" || fail "report did not show January"
grep -qF "$busiest" "$WORK/report.txt" || fail "report does not show the busiest host $busiest"
say "ok"
