#!/usr/bin/env bash
# test_crash_recovery.sh — kill -9 at 20 moments of a 500,000-event run,
# restarting each time; the tables must equal the plain-SQL reference
# exactly (hits, datelists, datelist_int, and unique counts, which are exact
# below --exact-uniques-limit).
#
# Half the kills are SIGKILLs at random instants; the other half are
# failpoints (ACTIVITY_FAILPOINT) that SIGKILL the process at the instants
# a random kill rarely hits: Redis applies sent but their replies unread,
# applied but not committed to Kafka, dirty sets taken but not written,
# PostgreSQL staged but not committed, committed but not cleaned up.
# Small batches and a short flush interval make every run cross many
# applies and flushes.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_CRASH_EVENTS:-500000}
say "setting up $EVENTS events"
setup_month "$EVENTS" 21

FLAGS=(--instance-id "crash-$RUN_ID" --batch-size 3000 --flush-interval 0.3)
POINTS=(apply-sent apply-done flush-after-take flush-before-commit flush-after-commit)
killed=0
for i in $(seq 1 20); do
    if ((i % 2)); then
        delay=$(python3 -c "import random; print(round(random.uniform(0.8, 2.5), 2))")
        "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up "${FLAGS[@]}" \
            2>>"$WORK/crash.log" &
        pid=$!
        sleep "$delay"
        kill -9 "$pid" 2>/dev/null && how="kill -9 after ${delay}s" || how="finished before the kill"
        wait "$pid" 2>/dev/null || true
    else
        point=${POINTS[$(((i / 2) % ${#POINTS[@]}))]}
        nth=$((RANDOM % 4 + 1))
        rc=0
        ACTIVITY_FAILPOINT="$point:$nth" "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" \
            --until-caught-up "${FLAGS[@]}" 2>>"$WORK/crash.log" || rc=$?
        if [ "$rc" = 137 ]; then how="failpoint $point:$nth"; else how="exit $rc before $point:$nth"; fi
    fi
    [[ $how == kill* || $how == failpoint* ]] && killed=$((killed + 1))
    say "crash $i: $how"
done
say "$killed of 20 runs were killed mid-flight; final run"
run_until_caught_up "$WORK/final.log" "${FLAGS[@]}"
grep "done:" "$WORK/final.log" >&2
compare_tables -v uv_tolerance_pct=0
[ "$killed" -ge 15 ] || fail "only $killed runs were actually killed; the test did not exercise enough crashes"
say "ok"
