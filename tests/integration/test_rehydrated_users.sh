#!/usr/bin/env bash
# test_rehydrated_users.sh — a user-month held per browser, as rehydration brings it back from
# PostgreSQL (README "Lateness and eviction"), flushes to the same rows.
#
# After a complete run, 300 user-months have their Redis value replaced by what PostgreSQL
# holds: one "~<hex of browser_type>=<datelist_int>" entry per user_devices_cumulated row
# ("~-" for a NULL browser) and "null=<users_cumulated datelist_int>", their devices gone;
# they are marked dirty and the processor runs again. The flush must take the browser entries
# as resolved: every table is unchanged to the byte and equals the reference (a flush that
# ignored them would delete those users' user_devices_cumulated rows).
source "$(dirname "$0")/lib.sh"

say "setting up 20000 events"
setup_month 20000 61
run_until_caught_up "$WORK/run1.log"
compare_tables -v uv_tolerance_pct=0
before=$(tables_digest)

# "month user value" per line, as rehydration would build it from the tables.
psql_test -tA -F' ' >"$WORK/users.txt" <<'SQL'
SELECT to_char(u.month_start, 'YYYYMM'), u.user_id,
       coalesce(string_agg(CASE WHEN d.browser_type IS NULL THEN '~-'
                                ELSE '~' || encode(convert_to(d.browser_type, 'UTF8'), 'hex') END
                           || '=' || d.datelist_int, ',' ORDER BY d.browser_type) || ',', '')
       || 'null=' || u.datelist_int
FROM users_cumulated u
LEFT JOIN user_devices_cumulated d USING (user_id, month_start)
GROUP BY u.month_start, u.user_id, u.datelist_int
ORDER BY count(d.user_id) DESC, u.user_id
LIMIT 300
SQL
n=$(wc -l <"$WORK/users.txt")
with_browser=$(grep -c '~' "$WORK/users.txt" || true)
[ "$n" = 300 ] && [ "$with_browser" -ge 100 ] ||
    fail "expected 300 user-months, 100 with browser rows (got $n, $with_browser)"

# Every user hash of the prefix with its group's dirty set, as KEYS pairs.
mapfile -t ukeys < <(redis-cli -u "$ACTIVITY_REDIS_URL" --scan --pattern "$PREFIX:*:u:*")
[ "${#ukeys[@]}" -gt 0 ] || fail "no user hashes in Redis"
keys=()
for k in "${ukeys[@]}"; do keys+=("$k" "${k%%:u:*}:dirty"); done
args=()
while read -r month user value; do args+=("$month" "$user" "$value"); done <"$WORK/users.txt"
done_n=$(redis-cli -u "$ACTIVITY_REDIS_URL" EVAL "
local done = 0
for j = 1, #ARGV, 3 do
  for k = 1, #KEYS, 2 do
    if string.find(KEYS[k], ':u:' .. ARGV[j] .. ':', 1, true)
        and redis.call('HEXISTS', KEYS[k], ARGV[j + 1]) == 1 then
      redis.call('HSET', KEYS[k], ARGV[j + 1], ARGV[j + 2])
      redis.call('SADD', KEYS[k + 1], 'u' .. ARGV[j] .. ':' .. ARGV[j + 1])
      done = done + 1
      break
    end
  end
end
return done" "${#keys[@]}" "${keys[@]}" "${args[@]}")
[ "$done_n" = 300 ] || fail "rewrote $done_n of 300 user values"
say "300 user-months rewritten per browser ($with_browser with browser rows), marked dirty"

run_until_caught_up "$WORK/run2.log"
[ "$(tables_digest)" = "$before" ] || fail "the tables changed after flushing the per-browser values"
compare_tables -v uv_tolerance_pct=0
say "ok"
