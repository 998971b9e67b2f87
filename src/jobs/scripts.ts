/**
 * The Lua scripts that change a job. Each runs atomically in Redis, so counts stay exact however
 * many workers and API processes act on one job at once, and however they die.
 *
 * KEYS, in this order for every script: meta, urls, results, content, held.
 */

// Sets the TTL of every key of the job; called on each change so a live job never expires.
const touch = `
local function touch(ttl)
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
`

/**
 * step: a lane reports the URL it finished (if any) and asks for the next one.
 * ARGV: lane, index (-1: none), resultJson, outcome (succeeded|failed), bytes, body, now (ms),
 *       ttl (ms), channel, claim (1: give me the next index, 0: I am stopping), keep body (1|0).
 * Returns {code, index, url}: code 1 = here is an index to fetch; 0 = nothing more for this lane;
 * -1 = the job is finished or cancelled; -3 = the job does not exist (expired).
 * The result of an index is written once: a second report of it (a lane that was taken over
 * while its old worker still ran) changes nothing, so no URL is ever counted twice.
 */
export const stepScript = touch + `
local meta, urls, results, content, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local lane, idx = ARGV[1], tonumber(ARGV[2])
local now, ttl = tonumber(ARGV[7]), tonumber(ARGV[8])
local state = redis.call('HGET', meta, 'state')
if not state then return {-3} end
if idx >= 0 then
  if state == 'running' and redis.call('HEXISTS', results, idx) == 0 then
    redis.call('HSET', results, idx, ARGV[3])
    if ARGV[11] == '1' then redis.call('HSET', content, idx, ARGV[6]) end
    local done = redis.call('HINCRBY', meta, ARGV[4], 1)
    redis.call('HINCRBY', meta, 'bytes', ARGV[5])
    redis.call('HINCRBY', meta, 'running', -1)
    local other = ARGV[4] == 'succeeded' and 'failed' or 'succeeded'
    done = done + tonumber(redis.call('HGET', meta, other))
    if done >= tonumber(redis.call('HGET', meta, 'total')) then
      redis.call('HSET', meta, 'state', 'completed', 'finishedAt', now, 'expiresAt', now + ttl, 'running', 0)
      redis.call('DEL', held)
      touch(ttl)
      redis.call('PUBLISH', ARGV[9], redis.call('HGET', meta, 'id'))
      return {-1}
    end
  end
  if redis.call('HGET', held, lane) == ARGV[2] then redis.call('HDEL', held, lane) end
end
if state == 'queued' then
  redis.call('HSET', meta, 'state', 'running', 'startedAt', now)
  state = 'running'
end
if state ~= 'running' then return {-1} end
redis.call('HSET', meta, 'expiresAt', now + ttl)
touch(ttl)
if ARGV[10] ~= '1' then return {0} end
local h = redis.call('HGET', held, lane)
if h then return {1, tonumber(h), redis.call('LINDEX', urls, h)} end
local n = redis.call('HINCRBY', meta, 'next', 1) - 1
if n >= tonumber(redis.call('HGET', meta, 'total')) then
  redis.call('HINCRBY', meta, 'next', -1)
  return {0}
end
redis.call('HSET', held, lane, n)
redis.call('HINCRBY', meta, 'running', 1)
return {1, n, redis.call('LINDEX', urls, n)}
`

/**
 * finish: ends a job that is not finished yet, as `cancelled` (DELETE) or `failed` (a lane could
 * not go on). Every URL without a result is counted under `cancelled` or `failed`; readers show
 * those URLs with that state. Fetches still in flight report afterwards and change nothing.
 * ARGV: state (cancelled|failed), errorJson ('' for none), now (ms), ttl (ms), channel.
 * Returns the state the job had: 'missing', a final state (left as it was), or 'queued'/'running'.
 */
export const finishScript = touch + `
local meta, held = KEYS[1], KEYS[5]
local state = redis.call('HGET', meta, 'state')
if not state then return 'missing' end
if state == 'completed' or state == 'failed' or state == 'cancelled' then return state end
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local total = tonumber(redis.call('HGET', meta, 'total'))
local s = tonumber(redis.call('HGET', meta, 'succeeded'))
local f = tonumber(redis.call('HGET', meta, 'failed'))
redis.call('HSET', meta, 'state', ARGV[1], 'finishedAt', now, 'expiresAt', now + ttl,
  'running', 0, 'next', total, 'error', ARGV[2])
if ARGV[1] == 'cancelled' then
  redis.call('HSET', meta, 'cancelled', total - s - f)
else
  redis.call('HSET', meta, 'failed', total - s)
end
redis.call('DEL', held)
touch(ttl)
redis.call('PUBLISH', ARGV[5], redis.call('HGET', meta, 'id'))
return state
`
