#!/usr/bin/env bash
# test_flush_tokens.sh — the dirty → flushing hand-off under two flushes
# that interleave badly, staged step by step with the real scripts on the
# real Redis (consumer-group runs hit this only by chance).
#
# Flush A gets token 7, flush B token 8. If B takes a group first and A
# takes it after, A could commit and finish first — deleting members that B
# never read — and B would then overwrite their rows with older values.
# take_dirty.lua must refuse A's late take and move nothing.
source "$(dirname "$0")/lib.sh"

rcli() { redis-cli -u "$ACTIVITY_REDIS_URL" "$@"; }
G="$PREFIX:{g7}"
take() { rcli --eval "$ROOT/processors/take_dirty.lua" \
    "$G:dirty" "$G:flushing" "$G:flushtoken" "$G:dim" "$G:dimflushing" , "$1"; }
finish() { rcli --eval "$ROOT/processors/finish_flush.lua" \
    "$G:flushing" "$G:flushtoken" "$G:dimflushing" , "$1"; }

rcli SADD "$G:dirty" u202301:1 >/dev/null
got=$(take 8)
[ "$got" = "u202301:1" ] || fail "flush 8 took '$got', expected u202301:1"
rcli SADD "$G:dirty" u202301:2 >/dev/null
got=$(take 7)
[ "$got" = "8" ] || fail "the older flush 7 was not refused after flush 8 took the group (got '$got')"
[ "$(rcli SISMEMBER "$G:dirty" u202301:2)" = 1 ] || fail "the refused take moved the new member"
[ "$(rcli GET "$G:flushtoken")" = 8 ] || fail "the refused take changed the recorded token"
[ "$(finish 7)" = 0 ] || fail "flush 7 deleted a flushing set that flush 8 holds"
[ "$(rcli SCARD "$G:flushing")" = 1 ] || fail "flushing set lost its member"

# In token order everything moves, and only the last taker forgets the set.
got=$(take 9 | sort | tr '\n' ' ')
[ "$got" = "u202301:1 u202301:2 " ] || fail "flush 9 took '$got'"
[ "$(finish 8)" = 0 ] || fail "flush 8 finished a set that flush 9 took since"
[ "$(finish 9)" = 1 ] || fail "flush 9 could not finish its own take"
[ "$(rcli EXISTS "$G:flushing")" = 0 ] || fail "flushing set still there after flush 9 finished"
say "ok"
