-- evict.lua: deletes one closed month's state of one key group, once
-- PostgreSQL holds all of it.
--
-- KEYS: [1] dirty set, [2] flushing set, [3] set of the months held, [4]
-- set of the evicted months, [5] the month's key list k:<YYYYMM>, [6] the
-- hash month -> eviction generation (rehydrate.lua's fence), [7] the
-- hash month -> flush token of the evictions, then every member of that
-- list (read just before; Redis Cluster routes by KEYS, and all share the
-- group's hash tag).
-- ARGV[1] = the month, YYYYMM; ARGV[2] = the newest flush token Redis saw
-- PostgreSQL commit (the month's final state is in PostgreSQL at that
-- token: a PostgreSQL restored to an older token may have lost it).
--
-- A month's state is in PostgreSQL when no dirty marker of it is in the
-- dirty or flushing set: apply.lua adds one for every change, and markers
-- leave the flushing set only after the flush that took them committed
-- (finish_flush.lua). (A user of the month waiting for its device is not
-- in PostgreSQL yet either: the waiting sets live in the devices' groups,
-- so the caller, redis_state_evict_closed, leaves such months out.)
-- Then, in one atomic step: the keys go, the month leaves the months held
-- and joins the evicted ones. A crash before leaves the state (the next
-- flush evicts it); after, the committed rows: never neither.
-- Returns 1 when evicted, 0 when the month still has unflushed state, -1
-- when the key list changed since it was read (the caller reads it again
-- at its next flush).
local month = ARGV[1]
local h, u = 'h' .. month .. ':', 'u' .. month .. ':'
local function pending(key)
  -- The dirty sets are small right after a flush: the check runs then.
  for _, m in ipairs(redis.call('SMEMBERS', key)) do
    local head = string.sub(m, 1, #h)
    if head == h or head == u then return true end
  end
  return false
end
if pending(KEYS[1]) or pending(KEYS[2]) then
  return 0
end
if redis.call('SCARD', KEYS[5]) ~= #KEYS - 7 then
  return -1
end
for j = 8, #KEYS, 1000 do
  redis.call('DEL', unpack(KEYS, j, math.min(j + 999, #KEYS)))
end
redis.call('DEL', KEYS[5])
redis.call('SREM', KEYS[3], month)
redis.call('SADD', KEYS[4], month)
-- A rehydration that read PostgreSQL before this eviction must not write
-- (rehydrate.lua compares the generation it read).
redis.call('HINCRBY', KEYS[6], month, 1)
redis.call('HSET', KEYS[7], month, ARGV[2])
return 1
