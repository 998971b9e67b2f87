--[[
  A lane reports the URL it finished (if any) and asks for the next one.

  Input:
    KEYS[1] meta      hash: the job's state, timestamps, counters
    KEYS[2] urls      list: the URLs in input order
    KEYS[3] results   hash: index -> result JSON (bodies are in the content store, never here)
    KEYS[4] held      hash: lane -> index the lane is fetching
    KEYS[5] events    stream: the job's history
    KEYS[6] pending   string: the tenant's count of pending URLs

    ARGV[1] lane      the lane's number
    ARGV[2] index     the index it finished; -1 for none
    ARGV[3] result    the result JSON of that index ('' for none)
    ARGV[4] outcome   succeeded | failed: the counter the result goes under
    ARGV[5] bytes     body bytes of that result
    ARGV[6] now       ms since the epoch
    ARGV[7] ttl       ms a finished (or idle) job is kept
    ARGV[8] channel   pub/sub channel told the id of a job that finishes
    ARGV[9] claim     1: give me the next index; 0: I am stopping

  Output: {code, index, url}
    1   here is an index to fetch (and its URL)
    0   nothing more for this lane
    -1  the job is finished or cancelled
    2   this report finished the job
    -3  the job does not exist (expired)

  The result of an index is written once: a second report of it (a lane that was taken over
  while its old worker still ran) changes nothing, so no URL is counted twice. A report that
  arrives after the job ended (cancelled, failed) changes nothing either.
  Job states are spelled here as in src/jobs/schemas.ts (JOB_STATES).
]]
local meta, urls, results, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lane, idx = ARGV[1], tonumber(ARGV[2])
local now, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local state = redis.call('HGET', meta, 'state')
if not state then return {-3} end
if idx >= 0 then
  if state == 'running' and redis.call('HEXISTS', results, idx) == 0 then
    redis.call('HSET', results, idx, ARGV[3])
    local done = redis.call('HINCRBY', meta, ARGV[4], 1)
    redis.call('HINCRBY', meta, 'bytes', ARGV[5])
    redis.call('HINCRBY', meta, 'running', -1)
    redis.call('DECR', KEYS[6])
    resultEvent(idx, ARGV[3])
    local other = ARGV[4] == 'succeeded' and 'failed' or 'succeeded'
    done = done + tonumber(redis.call('HGET', meta, other))
    if done >= tonumber(redis.call('HGET', meta, 'total')) then
      redis.call('HSET', meta, 'state', 'completed', 'finishedAt', now, 'expiresAt', now + ttl, 'running', 0)
      redis.call('DEL', held)
      stateEvent()
      touch(ttl)
      redis.call('PUBLISH', ARGV[8], redis.call('HGET', meta, 'id'))
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
  or redis.call('PTTL', results) == -1 or redis.call('PTTL', held) == -1 then
  redis.call('HSET', meta, 'expiresAt', now + ttl)
  touch(ttl)
end
if ARGV[9] ~= '1' then return {0} end
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
