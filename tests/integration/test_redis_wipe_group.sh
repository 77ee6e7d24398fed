#!/usr/bin/env bash
# test_redis_wipe_group.sh — Redis loses the state (FLUSHDB) under two
# members of one consumer group while every partition is quiet, and no
# record arrives afterwards. The first member to notice writes the layout
# marker again, so the other can learn of the loss only from the epoch:
# both must re-read every partition they hold, devices included, or the
# other's state stays missing. After SIGTERM to both, the tables equal the
# reference exactly.
source "$(dirname "$0")/lib.sh"

rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
start_fault_run "${IT_WIPE_EVENTS:-150000}" 73 8
first=$PROC
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --batch-size 5000 --flush-interval 0.5 \
    2>"$WORK/run2.log" &
second=$!
load_chunks 1 7 0.2
settled() { # the fences of every partition, twice 2 s apart, the same
    local a b
    a=$(rcli --scan --pattern "$PREFIX:{*}:fence" | sort | xargs -r -n 50 rcli HGETALL 2>/dev/null | md5sum)
    sleep 2
    b=$(rcli --scan --pattern "$PREFIX:{*}:fence" | sort | xargs -r -n 50 rcli HGETALL 2>/dev/null | md5sum)
    [ "$a" = "$b" ]
}
for _ in $(seq 1 30); do settled && break; done
grep -q "assigned" "$WORK/run2.log" || fail "the second member never got partitions"
say "FLUSHDB under two quiet members ($(rcli DBSIZE) keys)"
rcli FLUSHDB >/dev/null
for _ in $(seq 1 60); do
    [ "$(cat "$WORK/run.log" "$WORK/run2.log" | grep -c "back where it stood")" -ge 2 ] && break
    sleep 0.5
done
for _ in $(seq 1 30); do settled && break; done
kill -TERM "$first" "$second"
wait "$first" || fail "the first member did not exit 0 on SIGTERM"
wait "$second" || fail "the second member did not exit 0 on SIGTERM"
for log in run run2; do
    grep -E "lost the state|fences were reset|back where it stood" "$WORK/$log.log" |
        cut -c1-160 | sed "s/^/$log: /" >&2 || true
done
compare_tables -v uv_tolerance_pct=0
for log in run run2; do
    grep -qE "redis lost the state|fences were reset for every instance" "$WORK/$log.log" ||
        fail "$log: the member did not notice the wipe"
done
say "ok"
