--[[
  Extends BullMQ lock keys while Redis is at maxmemory (redis/oom.ts keepLocksThroughOom), as
  BullMQ's extendLocks would: a lock is extended only while it still holds this worker's token,
  and the job leaves the stalled set. Uses only commands a full Redis still runs (GET, PEXPIRE,
  SREM), where BullMQ's SET is refused.

  KEYS[1] stalled   the queue's stalled set
  ARGV[1] base      the queue's key prefix (`<prefix>:<queue>:`)
  ARGV[2] ids       JSON array of job ids
  ARGV[3] tokens    JSON array of their lock tokens, in the same order
  ARGV[4] ttl       lock duration, ms

  Reply: the ids whose lock could not be extended (gone, or another worker's).
]]
local ids = cjson.decode(ARGV[2])
local tokens = cjson.decode(ARGV[3])
local failed = {}
for i, id in ipairs(ids) do
  local key = ARGV[1] .. id .. ':lock'
  if tokens[i] ~= nil and redis.call('GET', key) == tokens[i] then
    redis.call('PEXPIRE', key, ARGV[4])
    redis.call('SREM', KEYS[1], id)
  else
    table.insert(failed, id)
  end
end
return failed
