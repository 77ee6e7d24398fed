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
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('SUNIONSTORE', KEYS[2], KEYS[1], KEYS[2])
    redis.call('DEL', KEYS[1])
  else
    redis.call('RENAME', KEYS[1], KEYS[2])
  end
end
-- KEYS[4] = "<prefix>:{g}:dim", KEYS[5] = "<prefix>:{g}:dimflushing": the
-- buffered dimension changes move the same way, except that changes a flush
-- has taken but not finished are taken again as they are, and newer ones
-- wait in :dim for the next flush (the SCD2 merge depends neither on order
-- nor on repeats, so this is safe). The member "D" tells the flush to read
-- :dimflushing.
if KEYS[5] then
  if redis.call('EXISTS', KEYS[5]) == 0 and redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('RENAME', KEYS[4], KEYS[5])
  end
  if redis.call('EXISTS', KEYS[5]) == 1 then
    redis.call('SADD', KEYS[2], 'D')
  end
end
redis.call('SET', KEYS[3], ARGV[1])
return redis.call('SMEMBERS', KEYS[2])
