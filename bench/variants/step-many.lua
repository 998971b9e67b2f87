--[[
  PROTOTYPE for issue 11 (bench/step-batch.ts only, not used by trawl): step.lua reporting many
  results and claiming many indexes per call. No bodies (issue 8 moves them out of Redis).
  held is a hash index -> lane, so a lane may hold several indexes; a lane that starts again
  (resume = 1) gets back every index it held, so a dead worker still loses none.

  KEYS: meta urls results content held events pending
  ARGV[1] lane, ARGV[2] now, ARGV[3] ttl, ARGV[4] channel, ARGV[5] want (indexes to claim),
  ARGV[6] resume (1: hand back what this lane holds), then per report 4 values:
  index, outcome (succeeded|failed), bytes, result JSON.
  Output: {code, index1, url1, index2, url2, ...}: code 1 fetch these, 0 nothing more, -1 over, 2 finished, -3 gone
]]
local meta, urls, results, held = KEYS[1], KEYS[2], KEYS[3], KEYS[5]
local lane = ARGV[1]
local now, ttl, want = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local state = redis.call('HGET', meta, 'state')
if not state then return {-3} end
local nreports = (#ARGV - 6) / 4
if nreports > 0 and state == 'running' then
  local counts = { succeeded = 0, failed = 0 }
  local bytes, done = 0, 0
  for r = 0, nreports - 1 do
    local idx, outcome, b, result = ARGV[7 + 4 * r], ARGV[8 + 4 * r], ARGV[9 + 4 * r], ARGV[10 + 4 * r]
    if redis.call('HSETNX', results, idx, result) == 1 then
      counts[outcome] = counts[outcome] + 1
      bytes = bytes + tonumber(b)
      done = done + 1
      redis.call('XADD', KEYS[6], '*', 'e', 'result', 'i', idx, 'u', redis.call('LINDEX', urls, idx), 'r', result)
    end
    if redis.call('HGET', held, idx) == lane then redis.call('HDEL', held, idx) end
  end
  if done > 0 then
    local s = redis.call('HINCRBY', meta, 'succeeded', counts.succeeded)
    local f = redis.call('HINCRBY', meta, 'failed', counts.failed)
    redis.call('HINCRBY', meta, 'bytes', bytes)
    redis.call('HINCRBY', meta, 'running', -done)
    redis.call('DECRBY', KEYS[7], done)
    if s + f >= tonumber(redis.call('HGET', meta, 'total')) then
      redis.call('HSET', meta, 'state', 'completed', 'finishedAt', now, 'expiresAt', now + ttl, 'running', 0)
      redis.call('DEL', held)
      redis.call('XADD', KEYS[6], '*', 'e', 'state', 'm', cjson.encode(redis.call('HGETALL', meta)))
      for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ttl) end
      redis.call('PUBLISH', ARGV[4], redis.call('HGET', meta, 'id'))
      return {2}
    end
  end
end
if state == 'queued' then
  redis.call('HSET', meta, 'state', 'running', 'startedAt', now)
  state = 'running'
  redis.call('XADD', KEYS[6], '*', 'e', 'state', 'm', cjson.encode(redis.call('HGETALL', meta)))
end
if state ~= 'running' then return {-1} end
if tonumber(redis.call('HGET', meta, 'expiresAt')) - now < ttl - math.min(60000, ttl / 10) then
  redis.call('HSET', meta, 'expiresAt', now + ttl)
  for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
if want == 0 then return {0} end
local out = {1}
if ARGV[6] == '1' then
  local all = redis.call('HGETALL', held)
  for i = 1, #all, 2 do
    if all[i + 1] == lane then
      out[#out + 1] = tonumber(all[i])
      out[#out + 1] = redis.call('LINDEX', urls, all[i])
    end
  end
  if #out > 1 then return out end
end
local total = tonumber(redis.call('HGET', meta, 'total'))
local first = redis.call('HINCRBY', meta, 'next', want) - want
local last = math.min(first + want, total) - 1
if last < first then
  redis.call('HSET', meta, 'next', total)
  return {0}
end
if first + want > total then redis.call('HSET', meta, 'next', total) end
local got = redis.call('LRANGE', urls, first, last)
for n = first, last do
  redis.call('HSET', held, n, lane)
  out[#out + 1] = n
  out[#out + 1] = got[n - first + 1]
end
redis.call('HINCRBY', meta, 'running', last - first + 1)
return out
