-- take_dirty.lua: hands a key group's dirty set over to the flush.
--
-- KEYS[1] = "<prefix>:{g}:dirty", KEYS[2] = "<prefix>:{g}:flushing".
-- Moves dirty members into the flushing set in one atomic step and returns
-- the whole flushing set. Members stay in "flushing" until the flush has
-- committed them to PostgreSQL; a crash before that leaves them there, so
-- the next flush writes them again (flushes write absolute values, so a
-- repeat is harmless).
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('SUNIONSTORE', KEYS[2], KEYS[1], KEYS[2])
    redis.call('DEL', KEYS[1])
  else
    redis.call('RENAME', KEYS[1], KEYS[2])
  end
end
return redis.call('SMEMBERS', KEYS[2])
