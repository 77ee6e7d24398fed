-- apply.lua: applies one key group's deltas of one partition batch, fenced.
--
-- Every key this call touches comes in KEYS (Redis Cluster routes a call by
-- them), all named "<prefix>:{g}:..." by processors/state_apply.c, so they
-- share the group's hash tag (one slot) and this call is one atomic unit:
-- either the deltas and the new fence are both applied, or neither.
--
-- KEYS: [1] fence hash, [2] dirty set, [3] device hash, [4] dimension
-- buffer, [5] watermark hash, [6] set of the months held, [7] set of the
-- evicted months; then per month of the call, in the order ARGV lists
-- them, its set of rehydrated entities r:<YYYYMM>; then per host-day of
-- the first section, in its order, the hits hash h:<YYYYMM>:<host>, the
-- exact set s:<YYYYMMDD>:<host> and the HyperLogLog p:<YYYYMMDD>:<host> of
-- its uniques and the month's key list k:<YYYYMM>; then per user hash of
-- the second section, in its order, u:<YYYYMM>:<bucket> and k:<YYYYMM>.
--
-- ARGV: fence field ("topic/partition"), expected fence ("-1" if none; "*"
-- only from the benchmark's unfenced build, ACTIVITY_UNFENCED in
-- state_apply.c: no fence check and no fence update, to price them), new
-- fence, the exact-uniques limit, the watermark this batch reaches (epoch
-- ms: its latest event time minus the allowed lateness; "-" without
-- events), the distinct months of the call (a count, then each YYYYMM),
-- then four sections, each a count followed by its entries:
--   host-days: month(YYYYMM) day(D) host hits nusers nreg member...
--     (members: lib/hll.h hll_redis_member; the first nreg are 8 bytes, PFADD-able;
--     the others, 9 bytes, set no register of the sketch and are never PFADDed)
--   user hashes: month nusers, then per user: user ndev (dev mask)...
--   devices: device value (processors/batch.h: device_value_encode)
--   dimension changes: field entries (processors/dims.h: field "d<id>" or
--     "u<id>", entries "<updated_at>:<len>:<payload>"..., sorted)
-- The dirty markers it adds are defined in processors/dirty_marker.h.
-- Every key an entity of month M gets is also listed in k:M, so that the
-- eviction of M (evict.lua) names them all in its KEYS without a SCAN.
-- An entity (a host, or a user) of a month in the evicted set is applied
-- only once rehydrate.lua brought it back from PostgreSQL (listed in
-- r:<YYYYMM>; README "Lateness and eviction"). Until then nothing is
-- written, not even the fence: the caller rehydrates and calls again.
-- Returns {1} when applied; {0, current fence} when the fence moved
-- (another instance applied this range, or this one is a zombie); {2,
-- kind, month, entity, ...} when entities of evicted months must be
-- rehydrated first ("h" host or "u" user): nothing is written.
local fence_key, dirty_key, devkey, dimkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local wmkey, monthskey, evictedkey = KEYS[5], KEYS[6], KEYS[7]
local NHKEYS, NUKEYS = 4, 2 -- keys per host-day, per user hash
local fenced = ARGV[2] ~= '*'
if fenced then
  local cur = redis.call('HGET', fence_key, ARGV[1]) or '-1'
  if cur ~= ARGV[2] then
    return {0, cur}
  end
end

local EXACT_LIMIT = tonumber(ARGV[4])
local CHUNK = 1000
local dirty = {}

local function chunked(cmd, key, list, first, last)
  for j = first, last, CHUNK do
    redis.call(cmd, key, unpack(list, j, math.min(j + CHUNK - 1, last)))
  end
end

-- Months are evicted rarely; one SMEMBERS answers every entity of the call.
-- With evicted months, a first pass finds their entities not brought back
-- yet, before anything is written.
local evicted, any_evicted = {}, false
for _, m in ipairs(redis.call('SMEMBERS', evictedkey)) do evicted[m] = true end
local nmonths = tonumber(ARGV[6])
local first = 7 + nmonths -- the first section
local kx = 8 + nmonths -- the first key of the sections
local rehydrated = {} -- month -> its r:<YYYYMM>, KEYS[8 ..]
for j = 1, nmonths do
  rehydrated[ARGV[6 + j]] = KEYS[7 + j]
  any_evicted = any_evicted or evicted[ARGV[6 + j]]
end
if any_evicted then
  local need, asked = {}, {}
  local function check(month, kind, entity)
    local member = kind .. entity
    if evicted[month] and not asked[month .. member] then
      asked[month .. member] = true
      if redis.call('SISMEMBER', rehydrated[month], member) == 0 then
        need[#need + 1] = kind
        need[#need + 1] = month
        need[#need + 1] = entity
      end
    end
  end
  local a = first
  local n = tonumber(ARGV[a]); a = a + 1
  for _ = 1, n do
    check(ARGV[a], 'h', ARGV[a + 2])
    a = a + 6 + tonumber(ARGV[a + 4])
  end
  n = tonumber(ARGV[a]); a = a + 1
  for _ = 1, n do
    local month, nu = ARGV[a], tonumber(ARGV[a + 1])
    a = a + 2
    for _ = 1, nu do
      check(month, 'u', ARGV[a])
      a = a + 2 + 2 * tonumber(ARGV[a + 1])
    end
  end
  if #need > 0 then
    table.insert(need, 1, 2)
    return need
  end
end
local months_seen = {}
-- Records that month holds key (its key list klist) once per call.
local listed = {}
local function list_key(month, klist, key)
  if not months_seen[month] then
    months_seen[month] = true
    redis.call('SADD', monthskey, month)
  end
  if not listed[key] then
    listed[key] = true
    redis.call('SADD', klist, key)
  end
end

local i = first
local nh = tonumber(ARGV[i]); i = i + 1
for _ = 1, nh do
  local month, day, host = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local hits, nu, nreg = ARGV[i + 3], tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local hkey, set, hll, klist = KEYS[kx], KEYS[kx + 1], KEYS[kx + 2], KEYS[kx + 3]
  i = i + 6
  kx = kx + NHKEYS
  list_key(month, klist, hkey)
  redis.call('HINCRBY', hkey, day, hits)
  if nu > 0 then
    -- What the day's sketch is built from (README "Daily sketches"): the
    -- exact set while small, HyperLogLog registers once past EXACT_LIMIT
    -- (never below the sketch's EXPLICIT threshold, 1280, so the set lasts
    -- as long as the sketch lists users). Members are the preimages of the
    -- users' hashes, so PFADD sets the sketch's registers.
    if redis.call('EXISTS', hll) == 1 then
      chunked('PFADD', hll, ARGV, i, i + nreg - 1)
    else
      chunked('SADD', set, ARGV, i, i + nu - 1)
      if redis.call('SCARD', set) > EXACT_LIMIT then
        local members, regs = redis.call('SMEMBERS', set), {}
        for _, m in ipairs(members) do
          if #m == 8 then regs[#regs + 1] = m end
        end
        redis.call('PFADD', hll) -- exists from now on, even with no register set
        chunked('PFADD', hll, regs, 1, #regs)
        redis.call('DEL', set)
      end
    end
    -- Both homes are listed: the set may be folded into the HyperLogLog
    -- by a later call.
    list_key(month, klist, set)
    list_key(month, klist, hll)
    i = i + nu
  end
  dirty[#dirty + 1] = 'h' .. month .. ':' .. host
end

-- A user's stored value lists "device=mask" pairs, comma-separated. Merges
-- the user's masks of this batch (ARGV[s + 1] devices from ARGV[s + 2]) into
-- the stored value o (or nil); returns the new value, or nil when every day
-- was known already (the user needs no re-flush).
local function merge_masks(o, s)
  local nd = tonumber(ARGV[s + 1])
  -- Most users: one device in the batch and at most that one stored.
  if nd == 1 then
    local d, m = ARGV[s + 2], tonumber(ARGV[s + 3])
    if not o then
      return d .. '=' .. m
    end
    if not string.find(o, ',', 1, true) then
      local eq = string.find(o, '=', 1, true)
      if eq and string.sub(o, 1, eq - 1) == d then
        local prev = tonumber(string.sub(o, eq + 1))
        local merged = bit.bor(prev, m)
        if merged == prev then return nil end
        return d .. '=' .. merged
      end
    end
  end
  local masks, order = {}, {}
  if o then
    for d, m in string.gmatch(o, '([^,=]+)=(%d+)') do
      masks[d] = tonumber(m)
      order[#order + 1] = d
    end
  end
  local changed = false
  for k = 1, nd do
    local d, m = ARGV[s + 2 * k], tonumber(ARGV[s + 2 * k + 1])
    local prev = masks[d]
    if prev == nil then
      order[#order + 1] = d
      masks[d] = m
      changed = true
    else
      local merged = bit.bor(prev, m)
      if merged ~= prev then
        masks[d] = merged
        changed = true
      end
    end
  end
  if not changed then return nil end
  local parts = {}
  for k = 1, #order do parts[k] = order[k] .. '=' .. masks[order[k]] end
  return table.concat(parts, ',')
end

local nk = tonumber(ARGV[i]); i = i + 1
for _ = 1, nk do
  local month, nu = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local key, klist = KEYS[kx], KEYS[kx + 1]
  kx = kx + NUKEYS
  local users, starts = {}, {}
  local j = i
  for u = 1, nu do
    users[u] = ARGV[j]
    starts[u] = j
    j = j + 2 + 2 * tonumber(ARGV[j + 1])
  end
  local old = {}
  for c = 1, nu, CHUNK do
    local part = redis.call('HMGET', key, unpack(users, c, math.min(c + CHUNK - 1, nu)))
    for k = 1, #part do old[c + k - 1] = part[k] end
  end
  local out = {}
  for u = 1, nu do
    local v = merge_masks(old[u], starts[u])
    if v then
      out[#out + 1] = users[u]
      out[#out + 1] = v
      dirty[#dirty + 1] = 'u' .. month .. ':' .. users[u]
    end
  end
  if #out > 0 then
    list_key(month, klist, key)
    chunked('HSET', key, out, 1, #out)
  end
  i = j
end

-- Device values are encoded by processors/batch.c (device_value_encode, the
-- format's one definition in processors/batch.h): length-prefixed fields,
-- browser_type first, updated_at fourth. These two readers follow it.
local function browser(v)
  if string.sub(v, 1, 1) == '-' then return '-' end
  local n = string.match(v, '^(%d+):')
  return string.sub(v, 1, #n + 1 + tonumber(n))
end

-- The updated_at of an encoded device value (its fourth field), or nil.
local function updated_at(v)
  local pos = 1
  for f = 1, 4 do
    if string.sub(v, pos, pos) == '-' then
      if f == 4 then return nil end
      pos = pos + 1
    else
      local n, p = string.match(v, '^(%d+):()', pos)
      if not n then return nil end
      if f == 4 then return tonumber(string.sub(v, p, p + tonumber(n) - 1)) end
      pos = p + tonumber(n)
    end
  end
  return nil
end

local nd = tonumber(ARGV[i]); i = i + 1
for _ = 1, nd do
  local dev, val = ARGV[i], ARGV[i + 1]
  i = i + 2
  local old = redis.call('HGET', devkey, dev)
  -- A device's state is its latest record by updated_at: an older record
  -- arriving late (a device history delivered out of order) changes nothing.
  local t_old, t_new = old and updated_at(old), updated_at(val)
  if t_old and t_new and t_new < t_old then
    val = old
  end
  if old ~= val then
    redis.call('HSET', devkey, dev, val)
    -- 'n': first sight (users waiting on it get resolved); 'c': browser
    -- changed (users already resolved with the old one get re-resolved).
    if not old then
      dirty[#dirty + 1] = 'n' .. dev
    elseif browser(old) ~= browser(val) then
      dirty[#dirty + 1] = 'c' .. dev
    end
  end
end

-- Dimension changes are buffered per entity in the hash dimkey until a
-- flush takes it: each value is the entity's changes, sorted by updated_at,
-- an exact repeat (same updated_at, same payload) kept once.
local function dim_entries(s)
  local list, pos = {}, 1
  while pos <= #s do
    local ts, n, p = string.match(s, '^(%-?%d+):(%d+):()', pos)
    if not ts then return {} end -- not ours: replaced, never a half-applied batch
    n = tonumber(n)
    list[#list + 1] = {tonumber(ts), ts, string.sub(s, p, p + n - 1)}
    pos = p + n
  end
  return list
end

local nz = tonumber(ARGV[i] or '0'); i = i + 1
for _ = 1, nz do
  local field, new = ARGV[i], ARGV[i + 1]
  i = i + 2
  local old = redis.call('HGET', dimkey, field)
  if not old then
    redis.call('HSET', dimkey, field, new)
  else
    local merged, have, added = dim_entries(old), {}, false
    for _, e in ipairs(merged) do have[e[2] .. ':' .. e[3]] = true end
    for _, e in ipairs(dim_entries(new)) do
      local k = e[2] .. ':' .. e[3]
      if not have[k] then
        have[k] = true
        merged[#merged + 1] = e
        added = true
      end
    end
    if added then
      table.sort(merged, function(a, b)
        if a[1] ~= b[1] then return a[1] < b[1] end
        return a[3] < b[3]
      end)
      local parts = {}
      for k, e in ipairs(merged) do parts[k] = e[2] .. ':' .. #e[3] .. ':' .. e[3] end
      redis.call('HSET', dimkey, field, table.concat(parts))
    end
  end
end

if #dirty > 0 then
  chunked('SADD', dirty_key, dirty, 1, #dirty)
end
if fenced then
  redis.call('HSET', fence_key, ARGV[1], ARGV[3])
end
-- The partition's watermark only moves forward (a replayed or older batch
-- leaves it), in the same atomic call as the fence.
if ARGV[5] ~= '-' then
  local wm = tonumber(redis.call('HGET', wmkey, ARGV[1]) or '-1e18')
  if tonumber(ARGV[5]) > wm then
    redis.call('HSET', wmkey, ARGV[1], ARGV[5])
  end
end
return {1}
