-- read_host.lua: everything a flush needs of one (host, month), in one call.
--
-- KEYS[1] = "<prefix>:{g}:h:<YYYYMM>:<host>" (hits per day); then for each
-- day d of the month both homes of its unique visitors (see apply.lua):
-- KEYS[2d] the exact set "<prefix>:{g}:s:<YYYYMMDD>:<host>", KEYS[2d+1]
-- the HyperLogLog "<prefix>:{g}:p:<YYYYMMDD>:<host>" (every key in KEYS:
-- Redis Cluster routes by them; processors/state_read.c names them).
-- Returns a flat array: day, hits (the decimal string HINCRBY keeps),
-- unique visitors, for each day with hits. Unique visitors come from the
-- exact set while it exists, else from the HyperLogLog it was folded into.
local h = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #h, 2 do
  local day = tonumber(h[i])
  local set, hll = KEYS[2 * day], KEYS[2 * day + 1]
  if not hll then
    return redis.error_reply('read_host: day ' .. h[i] .. ' of ' .. KEYS[1] .. ' has no keys')
  end
  local u = redis.call('SCARD', set)
  if u == 0 then
    u = redis.call('PFCOUNT', hll)
  end
  out[#out + 1] = day
  out[#out + 1] = h[i + 1] -- as stored: a Lua number would round past 2^53
  out[#out + 1] = u
end
return out
