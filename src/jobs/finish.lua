--[[
  Ends a job that is not finished yet, as `cancelled` (DELETE /jobs/:id) or `failed` (a lane
  could not go on). Every URL without a result gets ARGV[6] as its result event and is counted
  under that state; readers show those URLs the same way. Fetches still in flight report
  afterwards and change nothing (step.lua).

  Input:
    KEYS[1] meta      hash: the job's state, timestamps, counters
    KEYS[2] urls      list: the URLs in input order
    KEYS[3] results   hash: index -> result JSON
    KEYS[4] held      hash: lane -> index the lane is fetching
    KEYS[5] events    stream: the job's history
    KEYS[6] pending   string: the owner's count of pending URLs
    KEYS[7] parked    hash: index -> parked-URL JSON
    KEYS[8] parkq     zset: the parked indexes by host

    ARGV[1] state     cancelled | failed
    ARGV[2] error     error JSON ('' for none)
    ARGV[3] now       ms since the epoch
    ARGV[4] ttl       ms the finished job is kept
    ARGV[5] channel   pub/sub channel told the id of the job
    ARGV[6] result    result JSON for every URL that has none
    ARGV[7] tenant    '' for any; else a job of another tenant reads as missing

  Output: the state the job had: 'missing', a final state (then nothing changed), or
  'queued' / 'running' (then it is now ARGV[1]).
  The final states are spelled here as in src/jobs/schemas.ts (FINAL_JOB_STATES).
]]
local meta, results, held = KEYS[1], KEYS[3], KEYS[4]
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
redis.call('DECRBY', KEYS[6], unfinished)
redis.call('HSET', meta, 'state', ARGV[1], 'finishedAt', now, 'expiresAt', now + ttl,
  'running', 0, 'next', total, 'error', ARGV[2])
if ARGV[1] == 'cancelled' then
  redis.call('HSET', meta, 'cancelled', total - s - f)
else
  redis.call('HSET', meta, 'failed', total - s)
end
redis.call('DEL', held, KEYS[7], KEYS[8])
stateEvent()
touch(ttl)
redis.call('PUBLISH', ARGV[5], redis.call('HGET', meta, 'id'))
return state
