/**
 * The Lua scripts that change a job. Each runs atomically in Redis, so counts stay exact however
 * many workers and API processes act on one job at once, and however they die. Each change is
 * appended to the job's event stream in the same script, so the history never disagrees with
 * the record.
 *
 * KEYS, in this order for step and finish: meta, urls, results, content, held, events, and the
 * tenant's pending-URL counter.
 * Event entries: `e state m <meta as a JSON array of field, value>` and
 * `e result i <index> u <url> r <result JSON>`.
 */

const common = `
local function touch(ttl)
  for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
local function stateEvent()
  redis.call('XADD', KEYS[6], '*', 'e', 'state', 'm', cjson.encode(redis.call('HGETALL', KEYS[1])))
end
local function resultEvent(idx, result)
  redis.call('XADD', KEYS[6], '*', 'e', 'result', 'i', idx, 'u', redis.call('LINDEX', KEYS[2], idx), 'r', result)
end
`

/**
 * step: a lane reports the URL it finished (if any) and asks for the next one.
 * ARGV: lane, index (-1: none), resultJson, outcome (succeeded|failed), bytes, body, now (ms),
 *       ttl (ms), channel, claim (1: give me the next index, 0: I am stopping), keep body (1|0).
 * Returns {code, index, url}: code 1 = here is an index to fetch; 0 = nothing more for this lane;
 * -1 = the job is finished or cancelled; 2 = this report finished the job; -3 = the job does not
 * exist (expired). The result of an index is written once: a second report of it (a lane that
 * was taken over while its old worker still ran) changes nothing, so no URL is counted twice.
 */
export const stepScript = common + `
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
    redis.call('DECR', KEYS[7])
    resultEvent(idx, ARGV[3])
    local other = ARGV[4] == 'succeeded' and 'failed' or 'succeeded'
    done = done + tonumber(redis.call('HGET', meta, other))
    if done >= tonumber(redis.call('HGET', meta, 'total')) then
      redis.call('HSET', meta, 'state', 'completed', 'finishedAt', now, 'expiresAt', now + ttl, 'running', 0)
      redis.call('DEL', held)
      stateEvent()
      touch(ttl)
      redis.call('PUBLISH', ARGV[9], redis.call('HGET', meta, 'id'))
      return {2}
    end
  end
  if redis.call('HGET', held, lane) == ARGV[2] then redis.call('HDEL', held, lane) end
end
if state == 'queued' then
  redis.call('HSET', meta, 'state', 'running', 'startedAt', now)
  state = 'running'
  stateEvent()
end
if state ~= 'running' then return {-1} end
-- A live job never expires; its TTLs move forward when they have used up a tenth (60 s at most),
-- or when a key created since the last move has none yet.
if tonumber(redis.call('HGET', meta, 'expiresAt')) - now < ttl - math.min(60000, ttl / 10)
  or redis.call('PTTL', results) == -1 or redis.call('PTTL', content) == -1 or redis.call('PTTL', held) == -1 then
  redis.call('HSET', meta, 'expiresAt', now + ttl)
  touch(ttl)
end
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
 * not go on). Every URL without a result gets `resultJson` as its result event and is counted
 * under that state; readers show those URLs the same way. Fetches still in flight report
 * afterwards and change nothing.
 * ARGV: state (cancelled|failed), errorJson ('' for none), now (ms), ttl (ms), channel, resultJson,
 *       tenant ('' for any: a job of another tenant reads as missing).
 * Returns the state the job had: 'missing', a final state (left as it was), or 'queued'/'running'.
 */
export const finishScript = common + `
local meta, results, held = KEYS[1], KEYS[3], KEYS[5]
local state = redis.call('HGET', meta, 'state')
if not state then return 'missing' end
if ARGV[7] ~= '' and redis.call('HGET', meta, 'tenant') ~= ARGV[7] then return 'missing' end
if state == 'completed' or state == 'failed' or state == 'cancelled' then return state end
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local total = tonumber(redis.call('HGET', meta, 'total'))
local s = tonumber(redis.call('HGET', meta, 'succeeded'))
local f = tonumber(redis.call('HGET', meta, 'failed'))
local finished = {}
for _, k in ipairs(redis.call('HKEYS', results)) do finished[tonumber(k)] = true end
local unfinished = 0
for i = 0, total - 1 do
  if not finished[i] then
    resultEvent(i, ARGV[6])
    unfinished = unfinished + 1
  end
end
redis.call('DECRBY', KEYS[7], unfinished)
redis.call('HSET', meta, 'state', ARGV[1], 'finishedAt', now, 'expiresAt', now + ttl,
  'running', 0, 'next', total, 'error', ARGV[2])
if ARGV[1] == 'cancelled' then
  redis.call('HSET', meta, 'cancelled', total - s - f)
else
  redis.call('HSET', meta, 'failed', total - s)
end
redis.call('DEL', held)
stateEvent()
touch(ttl)
redis.call('PUBLISH', ARGV[5], redis.call('HGET', meta, 'id'))
return state
`

/**
 * admit: takes `n` URLs into a tenant's count of pending URLs if that stays within `max`.
 * KEYS: the counter. ARGV: n, max. Returns the new count, or -1 when the URLs do not fit.
 */
export const admitScript = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return -1 end
return redis.call('INCRBY', KEYS[1], ARGV[1])
`

/**
 * claimIdempotencyKey: the first request with a key stores `value` (`<job id> <hash>`); later
 * ones get the stored value back. KEYS: the key. ARGV: value, ttl (ms).
 */
export const claimKeyScript = `
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`
