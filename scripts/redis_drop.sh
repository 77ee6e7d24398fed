#!/usr/bin/env bash
# redis_drop.sh PREFIX — deletes every Redis key "PREFIX:*" (a test's or the
# demo's whole state) on $ACTIVITY_REDIS_URL. Done inside Redis by a script,
# because keys embed host names, which may hold quotes or newlines that a
# shell pipeline would mangle.
set -euo pipefail
prefix=$1
[[ $prefix =~ ^[A-Za-z0-9_.-]+$ ]] || {
    echo "redis_drop: refusing prefix '$prefix'" >&2
    exit 2
}
redis-cli -u "${ACTIVITY_REDIS_URL:-redis://127.0.0.1:16379/0}" EVAL "
local cursor, n = '0', 0
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do n = n + redis.call('DEL', k) end
until cursor == '0'
return n" 0 "$prefix:*" >/dev/null
