-- rehydrate.lua: brings one entity of an evicted month back from what
-- PostgreSQL holds into Redis, so that a late event for it can be applied
-- as usual (issue 13 item 3; README "Lateness and eviction").
--
-- Per entity, not per month: a late event costs the rows of its own host
-- or user, never the month's. The month stays in the evicted set; the
-- entities brought back are listed in r:<YYYYMM> ("h<host>", "u<user>"),
-- which is itself listed in the month's key list k:<YYYYMM>, so the next
-- eviction of the month (evict.lua) deletes them and that list together.
--
-- KEYS: [1] set of the evicted months, [2] hash month -> eviction
-- generation (evict.lua adds 1 at each eviction), [3] set of the months
-- held, [4] the month's key list k:<YYYYMM>, [5] its rehydrated set
-- r:<YYYYMM>; then for a host: [6] its hits hash h:<YYYYMM>:<host>, then
-- per day of ARGV, in order, the exact set s:<YYYYMMDD>:<host> and the
-- HyperLogLog p:<YYYYMMDD>:<host>; for a user: [6] its user hash
-- u:<YYYYMM>:<bucket>.
--
-- ARGV: [1] month YYYYMM, [2] the eviction generation the caller read
-- before it read PostgreSQL ("0" when none), [3] "h" or "u", [4] the
-- entity (host name, or user id), then
--   for "h": per day: day(D) hits kind ...  where kind is "s" n member...
--     (the day's EXPLICIT hashes as lib/hll.h members), "p" dense (Redis's
--     dense HyperLogLog string of the day's registers), or "-" (no uniques)
--   for "u": the user's value "device=mask,..." (apply.lua's format).
--
-- Fenced by the generation: the caller reads it, then PostgreSQL; if an
-- eviction happened in between (another instance rehydrated, applied,
-- flushed and evicted the month again), what it read may be stale and
-- nothing is written. Idempotent: an entity already brought back (or a
-- month no longer evicted) is left as it is. No dirty marker is added:
-- PostgreSQL already holds exactly this state.
-- Returns 1 when written, 0 when there was nothing to do, -1 when the
-- generation moved (the caller reads PostgreSQL again).
local evicted, evgen, monthskey, klist, rset = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local month, gen, kind, entity = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('SISMEMBER', evicted, month) == 0 then
  return 0
end
if (redis.call('HGET', evgen, month) or '0') ~= gen then
  return -1
end
local member = kind .. entity
if redis.call('SISMEMBER', rset, member) == 1 then
  return 0
end

local CHUNK = 1000
local function list_key(key)
  redis.call('SADD', klist, key)
end

if kind == 'h' then
  local hkey = KEYS[6]
  redis.call('DEL', hkey)
  list_key(hkey)
  local i, kx = 5, 7
  while i <= #ARGV do
    local day, hits, how = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local set, hll = KEYS[kx], KEYS[kx + 1]
    kx = kx + 2
    i = i + 3
    redis.call('HSET', hkey, day, hits)
    redis.call('DEL', set, hll)
    if how == 's' then
      local n = tonumber(ARGV[i])
      for j = i + 1, i + n, CHUNK do
        redis.call('SADD', set, unpack(ARGV, j, math.min(j + CHUNK - 1, i + n)))
      end
      i = i + 1 + n
    elseif how == 'p' then
      redis.call('SET', hll, ARGV[i])
      i = i + 1
    elseif how ~= '-' then
      return redis.error_reply('rehydrate: unknown uniques kind ' .. how)
    end
    -- Both homes are listed, as apply.lua does: a later apply may fold
    -- the set into the HyperLogLog.
    list_key(set)
    list_key(hll)
  end
elseif kind == 'u' then
  -- "" when PostgreSQL holds nothing of the user in that month.
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[6], entity, ARGV[5])
    list_key(KEYS[6])
  end
else
  return redis.error_reply('rehydrate: unknown entity kind ' .. kind)
end
redis.call('SADD', rset, member)
list_key(rset)
redis.call('SADD', monthskey, month)
return 1
