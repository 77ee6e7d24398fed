-- read_host.lua: everything a flush needs of one (host, month), in one call.
--
-- KEYS[1] = "<prefix>:{g}:h:<YYYYMM>:<host>" (hits per day); ARGV[1] is
-- the group prefix "<prefix>:{g}:", ARGV[2] the month "YYYYMM", ARGV[3] the
-- host. Returns a flat array: day, hits (the decimal string HINCRBY keeps),
-- unique visitors, for each day with hits. Unique visitors come from the exact set while it exists, else from
-- the HyperLogLog it was folded into (see apply.lua).
local h = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #h, 2 do
  local day = tonumber(h[i])
  local ymd = ARGV[2] .. string.format('%02d', day)
  local u = redis.call('SCARD', ARGV[1] .. 's:' .. ymd .. ':' .. ARGV[3])
  if u == 0 then
    u = redis.call('PFCOUNT', ARGV[1] .. 'p:' .. ymd .. ':' .. ARGV[3])
  end
  out[#out + 1] = day
  out[#out + 1] = h[i + 1] -- as stored: a Lua number would round past 2^53
  out[#out + 1] = u
end
return out
