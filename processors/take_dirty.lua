-- take_dirty.lua: hands a key group's dirty set over to a flush.
--
-- KEYS[1] = "<prefix>:{g}:dirty", KEYS[2] = "<prefix>:{g}:flushing",
-- KEYS[3] = "<prefix>:{g}:flushtoken"; ARGV[1] = the flush's token (from
-- INCR <prefix>:flushgen, so later flushes have larger tokens).
-- Moves dirty members into the flushing set in one atomic step, records the
-- token of the flush that took them last, and returns the whole flushing
-- set. Members stay in "flushing" until the flush holding the latest token
-- has committed them to PostgreSQL (finish_flush.lua): a crash, or a
-- concurrent flush by another instance, leaves them there for the next
-- flush, which writes them again (rows are absolute values, so a repeat is
-- harmless).
-- Returns the newer token instead, touching nothing, when a flush with a
-- larger token has already taken this group: takes must happen in token
-- order. Otherwise a stale flush (say, one stopped between its INCR and its
-- take) could take members after a newer flush, finish first (the recorded
-- token would be its own) and delete them, while the newer flush, which
-- never read them, overwrote their rows with values read earlier.
local held = tonumber(redis.call('GET', KEYS[3]) or '-1')
if held > tonumber(ARGV[1]) then
  return held
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('SUNIONSTORE', KEYS[2], KEYS[1], KEYS[2])
    redis.call('DEL', KEYS[1])
  else
    redis.call('RENAME', KEYS[1], KEYS[2])
  end
end
-- KEYS[4] = "<prefix>:{g}:dim", KEYS[5] = "<prefix>:{g}:dimflushing": the
-- buffered dimension changes (entity -> entry list, processors/dims.h) move
-- the same way. Into changes a flush took but did not finish, an entity's
-- newer entries are appended: the list is then no longer sorted and may
-- repeat an entry, which the SCD2 merge does not mind (it depends neither
-- on order nor on repeats). The member "D" tells the flush to read
-- :dimflushing (the markers: processors/dirty_marker.h).
if KEYS[5] then
  if redis.call('EXISTS', KEYS[4]) == 1 then
    if redis.call('EXISTS', KEYS[5]) == 0 then
      redis.call('RENAME', KEYS[4], KEYS[5])
    else
      local pending = redis.call('HGETALL', KEYS[4])
      for i = 1, #pending, 2 do
        local taken = redis.call('HGET', KEYS[5], pending[i])
        redis.call('HSET', KEYS[5], pending[i], (taken or '') .. pending[i + 1])
      end
      redis.call('DEL', KEYS[4])
    end
  end
  if redis.call('EXISTS', KEYS[5]) == 1 then
    redis.call('SADD', KEYS[2], 'D')
  end
end
redis.call('SET', KEYS[3], ARGV[1])
return redis.call('SMEMBERS', KEYS[2])
