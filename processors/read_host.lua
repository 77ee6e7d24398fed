-- read_host.lua: everything a flush needs of one (host, month), in one call.
--
-- KEYS[1] = "<prefix>:{g}:h:<YYYYMM>:<host>" (hits per day); then for each
-- day d of the month both homes of its unique visitors (see apply.lua):
-- KEYS[2d] the exact set "<prefix>:{g}:s:<YYYYMMDD>:<host>", KEYS[2d+1]
-- the HyperLogLog "<prefix>:{g}:p:<YYYYMMDD>:<host>" (every key in KEYS:
-- Redis Cluster routes by them; processors/state_read.c names them).
-- Returns a flat array, per day with hits: the day, the hits (the decimal
-- string HINCRBY keeps), then what the day's sketch is built from: 's' and
-- the exact set's members while it exists, else 'p' and the HyperLogLog
-- string it was folded into, or 'n' and '' for a day without users. Only
-- reads (GET, not PFCOUNT, which caches its count in the key).
local h = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #h, 2 do
  local day = tonumber(h[i])
  local set, hll = KEYS[2 * day], KEYS[2 * day + 1]
  if not hll then
    return redis.error_reply('read_host: day ' .. h[i] .. ' of ' .. KEYS[1] .. ' has no keys')
  end
  out[#out + 1] = day
  out[#out + 1] = h[i + 1] -- as stored: a Lua number would round past 2^53
  local members = redis.call('SMEMBERS', set)
  if #members > 0 then
    out[#out + 1] = 's'
    out[#out + 1] = members
  else
    local v = redis.call('GET', hll)
    if v then
      out[#out + 1] = 'p'
      out[#out + 1] = v
    else
      out[#out + 1] = 'n'
      out[#out + 1] = ''
    end
  end
end
return out
