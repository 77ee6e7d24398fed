-- finish_flush.lua: forgets a key group's flushing set after the flush that
-- took it last has committed.
--
-- KEYS[1] = "<prefix>:{g}:flushing", KEYS[2] = "<prefix>:{g}:flushtoken";
-- ARGV[1] = the committing flush's token. If another flush has taken the
-- set since (its token is recorded), that flush may hold members this one
-- never read, so the set stays for it.
-- KEYS[3] = "<prefix>:{g}:dimflushing" goes with it.
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if KEYS[3] then redis.call('DEL', KEYS[3]) end
  return 1
end
return 0
