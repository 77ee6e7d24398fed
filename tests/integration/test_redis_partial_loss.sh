#!/usr/bin/env bash
# test_redis_partial_loss.sh — one key of the state disappears while the
# fences and the layout marker stay (deleted by hand, or evicted before
# noeviction was set), and its entity is dirty. Re-reading from the fences
# cannot bring it back, so after one attempt the processor must stop with
# exit 1 and a message naming the fault and `backfill --reset`, having
# written nothing from the lost state (the tables still equal the
# reference); `activity backfill --reset` then rebuilds it all. Evicted-month
# records do not hide it (a flush leaves out only entities whose month their
# own key group records evicted, README "Lateness and eviction"): the group
# records another month evicted, and another group the key's month.
source "$(dirname "$0")/lib.sh"

rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
start_fault_run "${IT_PARTIAL_EVENTS:-60000}" 91 4
load_chunks 1 3 0
# Every table complete, not only the hits: a user's rows wait for its device,
# which a batch of the devices topic may apply a flush after the events.
for _ in $(seq 1 60); do
    psql_test -v uv_tolerance_pct=0 -f "$ROOT/tests/integration/compare.sql" >/dev/null 2>&1 && break
    sleep 0.5
done
compare_tables -v uv_tolerance_pct=0 >/dev/null
key=$(rcli --scan --pattern "$PREFIX:{*}:h:*" | head -1)
[ -n "$key" ] || fail "no host key found"
group=${key#"$PREFIX:{"}
group=${group%%\}*}
member=h${key#*"}:h:"}
say "deleting $key and marking $member dirty"
rcli DEL "$key" >/dev/null
rcli SADD "$PREFIX:{$group}:dirty" "$member" >/dev/null
month=${member:1:6}
rcli SADD "$PREFIX:{$group}:evicted" 199901 >/dev/null
rcli SADD "$PREFIX:{$(((group + 1) % 64))}:evicted" "$month" >/dev/null
expect_stop "$PROC" "$WORK/run.log" "were deleted or evicted.*backfill --reset"
say "stopped (exit $STOP_RC): $(grep -o "redis lacks the state of dirty entities ([^)]*)" "$WORK/run.log" | head -1)"
compare_tables -v uv_tolerance_pct=0 >/dev/null || fail "the lost state was written"
say "the tables are intact; activity backfill --reset rebuilds the state"
"$ACTIVITY" backfill --reset "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" 2>"$WORK/backfill.log" || {
    tail -20 "$WORK/backfill.log" >&2
    fail "backfill --reset failed"
}
compare_tables -v uv_tolerance_pct=0
say "ok"
