#!/usr/bin/env bash
# test_consumer_group.sh — three processes share the partitions of one
# consumer group; one is killed with SIGKILL mid-run and a fourth joins
# mid-run. Then a zombie: a member stopped with SIGSTOP past its session
# timeout while the others take its partitions over, then resumed. The
# tables must equal the plain-SQL reference exactly.
#
# The members are long-running; once the load is over they get SIGTERM
# (finish the batch, flush, commit, exit 0), and a last run with
# --until-caught-up applies whatever they left.
#
# Runs on the classic group protocol; test_consumer_group_kip848.sh runs it
# again on the consumer protocol (IT_GROUP_PROTOCOL=consumer, see lib.sh).
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_GROUP_EVENTS:-500000}
say "streaming $EVENTS events in 30 chunks"
start_streaming_month "$EVENTS" 31 30 0.4
# --verbose: a failed run keeps the members' logs, whose "applied A..B"
# lines show any offset range that no member applied.
GROUP_FLAGS=(--verbose --group "it$RUN_ID" --batch-size 3000 --flush-interval 0.5)
# A short session timeout so the group notices a dead or frozen member fast.
# On the consumer protocol the broker owns both settings (the local stack's
# are the same 6 s / 1 s) and librdkafka refuses them client-side.
[ "$IT_GROUP_PROTOCOL" = classic ] &&
    GROUP_FLAGS+=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)
say "group protocol: $IT_GROUP_PROTOCOL"

member() {
    "$ACTIVITY" run "${TOPIC_FLAGS[@]}" "${GROUP_FLAGS[@]}" 2>"$WORK/$1.log" &
}

member a
a=$!
member b
b=$!
member c
c=$!
sleep 3
say "killing member c with SIGKILL"
kill -9 "$c"
sleep 2
member d
d=$!
say "member d joined"
sleep 2
say "freezing member a with SIGSTOP for 12 s (past its 6 s session timeout)"
kill -STOP "$a"
sleep 12
kill -CONT "$a"
say "member a resumed"
wait "$LOADER_PID"

sleep 2
kill -TERM "$a" "$b" "$d"
for m in a b d; do
    wait "${!m}" || {
        tail -20 "$WORK/$m.log" >&2
        fail "member $m exited non-zero"
    }
done
run_until_caught_up "$WORK/last.log" "${GROUP_FLAGS[@]}"
grep -h "done:" "$WORK"/{a,b,d,last}.log >&2
grep -q "revoked\|assigned" "$WORK/b.log" || fail "member b saw no rebalance"
# The broker says which protocol the group really ran on (Classic or Consumer).
type=$(ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" kafka-groups --list --type |
    awk -v g="it$RUN_ID" '$1 == g { print $2 }')
[ "$type" = "${IT_GROUP_PROTOCOL^}" ] || fail "group type '$type', want ${IT_GROUP_PROTOCOL^}"
compare_tables -v uv_tolerance_pct=0
say "ok"
