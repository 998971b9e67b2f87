--[[
  A lane reports the URL it finished (if any) and asks for the next one.

  Input:
    KEYS[1] meta      hash: the job's state, timestamps, counters
    KEYS[2] urls      list: the URLs in input order
    KEYS[3] results   hash: index -> result JSON (bodies are in the content store, never here)
    KEYS[4] held      hash: lane -> index the lane is fetching
    KEYS[5] events    stream: the job's history
    KEYS[6] pending   string: the tenant's count of pending URLs
    KEYS[7] parked    hash: index -> parked-URL JSON (its host, why it waits, attempts so far)
    KEYS[8] parkq     zset (all scores 0): '<host> <index as 10 digits>' of the indexes waiting

    ARGV[1] lane      the lane's number
    ARGV[2] index     the index it finished; -1 for none
    ARGV[3] result    the result JSON of that index ('' for none)
    ARGV[4] outcome   succeeded | failed: the counter the result goes under
    ARGV[5] bytes     body bytes of that result
    ARGV[6] now       ms since the epoch
    ARGV[7] ttl       ms a finished (or idle) job is kept
    ARGV[8] channel   pub/sub channel told the id of a job that finishes
    ARGV[9] claim     1: give me the next index; 0: I am stopping
    ARGV[10] park     parked-URL JSON: ARGV[2] is parked, not finished ('' for a result)
    ARGV[11] host     the parked index's host (with park)
    ARGV[12] skip     hosts known to be blocked, separated by spaces: their parked indexes stay
    ARGV[13] want     a host the lane holds a slot on: its parked indexes come first ('' none)
    ARGV[14] paused   those of ARGV[12] that wait for a pause or a spacing, separated by spaces
    ARGV[15..] more   further steps of the same job, 14 arguments each in the same order (other
                      lanes' steps sent together): each runs after the one before, exactly as
                      if it were a call of its own, as far as replies, keys and events show;
                      the meta hash is read once per call and its counters written once

  Output: one reply per step, in the order of the steps: {{code, index, url[, parked]}, ...}
    1   here is an index to fetch, its URL and, if it was parked, its parked-URL JSON
    0   nothing more for this lane
    3   nothing but parked indexes on skipped hosts: {3, host, host, ...}
    4   the cursor's next indexes were on skipped hosts and are parked: call again (no report)
    -1  the job is finished or cancelled
    2   this report finished the job
    -3  the job does not exist (expired)

  The result of an index is written once: a second report of it (a lane that was taken over
  while its old worker still ran) changes nothing, so no URL is counted twice. A report that
  arrives after the job ended (cancelled, failed) changes nothing either.
  Parking (a URL whose host is full or paused) frees the lane's hold on the index and keeps it
  in KEYS[7] and KEYS[8] until a claim takes it, before the cursor's next index: a lane never
  waits for one host while the job has URLs on others, and a crash loses no parked index. Only
  the lane that holds the index can park it. A claimed parked index keeps its KEYS[7] entry
  (attempts so far survive a crash) until its result is written.
  Parking ahead: a cursor index whose URL is on a skipped host is parked here at once (up to
  AHEAD per call, then reply 4), rather than handed to the lane to be parked one round trip
  each: a job of 1,000 URLs on one full host parks them in 32 calls, not 1,000. The host is read
  from the URL as written (after '://', before any '/', '?', '#' or '\', after the last '@',
  before a port), lower-cased; where that differs from the URL parser's host name (an IDN, odd
  syntax), the index is just not parked ahead and the lane parks it as before, and an index
  parked under the wrong host still goes through the gate of its real host when fetched.
  Job states are spelled here as in src/jobs/schemas.ts (JOB_STATES).
]]
local meta, urls, results, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local parked, parkq = KEYS[7], KEYS[8]

-- What the steps of one call share (they are all of one job, and nothing else runs between
-- them): the meta fields, read once and kept here as the steps change them, and the counter
-- changes, written once by flushMeta at the end of the call, or before anything reads the hash
-- whole (a state event). The replies, the keys and the events are those of one call per step.
local m = nil -- state, total, expiresAt, succeeded, failed, next (numbers but the state)
local delta = {succeeded = 0, failed = 0, bytes = 0, running = 0}
local nextChanged, pendingDone = false, 0
local function flushMeta ()
  for _, field in ipairs({'succeeded', 'failed', 'bytes', 'running'}) do
    if delta[field] ~= 0 then
      redis.call('HINCRBY', meta, field, delta[field])
      delta[field] = 0
    end
  end
  if nextChanged then
    redis.call('HSET', meta, 'next', m[6])
    nextChanged = false
  end
  if pendingDone ~= 0 then
    redis.call('DECRBY', KEYS[6], pendingDone)
    pendingDone = 0
  end
end
local function readMeta ()
  local r = redis.call('HMGET', meta, 'state', 'total', 'expiresAt', 'succeeded', 'failed', 'next')
  if not r[1] then return r end
  return {r[1], tonumber(r[2]), tonumber(r[3]), tonumber(r[4]), tonumber(r[5]), tonumber(r[6])}
end
-- Whether the job has parked URLs (KEYS[7], KEYS[8]) is asked once per call; most jobs never
-- park, and their steps then skip the parked entry's removal and the parked-index lookup.
local mayHaveParked = nil
local function anyParked ()
  if mayHaveParked == nil then mayHaveParked = redis.call('EXISTS', parkq, parked) > 0 end
  return mayHaveParked
end

-- Index n waits for `host`: its record (parked-URL JSON), and its place in parkq as
-- '<host> <n as 10 digits>', the form the claims below read back.
local function park (n, json, host)
  redis.call('HSET', parked, n, json)
  redis.call('ZADD', parkq, 0, host .. ' ' .. string.format('%010d', n))
  mayHaveParked = true
end

-- Parking ahead: at most this many cursor indexes per step (then reply 4).
local AHEAD = 32
-- The host of a URL as written (see Parking ahead above), or nil.
local function hostOf (url)
  local rest = string.match(url, '^%a[%w+.-]*://(.*)$')
  if not rest then return nil end
  local authority = string.match(string.match(rest, '^([^/?#\\]*)'), '([^@]*)$')
  local host = string.sub(authority, 1, 1) == '[' and string.match(authority, '^(%[[^%]]*%])') or string.match(authority, '^([^:]*)')
  return host and string.lower(host)
end

-- One step: A holds its 14 arguments, named as ARGV[1..14] in the header.
local function step (A)
  local lane, idx = A[1], tonumber(A[2])
  local now, ttl = tonumber(A[6]), tonumber(A[7])
  -- The meta fields a step needs, read by the call's first step; counters change only in this script.
  m = m or readMeta()
  local state = m[1]
  if not state then return {-3} end
  local total = m[2]
  -- The lane's hold and its `running` count change at most once per call, in settle(): a report
  -- followed by a claim overwrites the hold and leaves `running` as it was.
  local h, hRead, release, running, fresh = nil, false, false, 0, false
  local function holding ()
    if not hRead then h, hRead = redis.call('HGET', held, lane), true end
    return h
  end
  local function settle (n)
    if n then
      -- A new field may be a new hash (the last hold went): it gets its TTL below.
      if redis.call('HSET', held, lane, n) == 1 and redis.call('PTTL', held) == -1 then fresh = true end
      running = running + 1
    elseif release then
      redis.call('HDEL', held, lane)
    end
    delta.running = delta.running + running
  end
  -- A live job never expires; its TTLs move forward when they have used up a tenth (60 s at most),
  -- or when this call created a key (results, held) that has none yet.
  local function done (n, reply)
    settle(n)
    if fresh or m[3] - now < ttl - math.min(60000, ttl / 10) then
      m[3] = now + ttl
      redis.call('HSET', meta, 'expiresAt', m[3])
      touch(ttl)
    end
    return reply
  end

  if idx >= 0 and A[10] ~= '' then
    if state == 'running' and holding() == A[2] and redis.call('HEXISTS', results, idx) == 0 then
      park(idx, A[10], A[11])
      redis.call('PEXPIRE', parked, ttl)
      redis.call('PEXPIRE', parkq, ttl)
      running, release, h = -1, true, nil
    end
  elseif idx >= 0 then
    if state == 'running' and redis.call('HEXISTS', results, idx) == 0 then
      redis.call('HSET', results, idx, A[3])
      local field = A[4] == 'succeeded' and 'succeeded' or 'failed'
      delta[field] = delta[field] + 1
      delta.bytes = delta.bytes + tonumber(A[5])
      pendingDone = pendingDone + 1
      if field == 'succeeded' then m[4] = m[4] + 1 else m[5] = m[5] + 1 end
      if anyParked() then redis.call('HDEL', parked, idx) end
      resultEvent(idx, A[3])
      running = -1
      local count = m[4] + m[5]
      -- The first result creates the results hash.
      if count == 1 then fresh = true end
      if count >= total then
        -- The counters first: the state event carries the whole hash.
        flushMeta()
        m[1], m[3] = 'completed', now + ttl
        redis.call('HSET', meta, 'state', 'completed', 'finishedAt', now, 'expiresAt', m[3], 'running', 0)
        redis.call('DEL', held, parked, parkq)
        mayHaveParked = false
        stateEvent()
        touch(ttl)
        redis.call('PUBLISH', A[8], redis.call('HGET', meta, 'id'))
        return {2}
      end
    end
    if holding() == A[2] then release, h = true, nil end
  end
  if state == 'queued' then
    flushMeta()
    redis.call('HSET', meta, 'state', 'running', 'startedAt', now)
    state, m[1] = 'running', 'running'
    stateEvent()
  end
  if state ~= 'running' then
    settle(nil)
    return {-1}
  end
  if A[9] ~= '1' then return done(nil, {0}) end

  -- The index this lane holds, with its parked entry if it may have one (held or from parkq).
  local function take (n, mayBeParked)
    local url = redis.call('LINDEX', urls, n)
    local info = mayBeParked and redis.call('HGET', parked, n)
    if info then return {1, n, url, info} end
    return {1, n, url}
  end
  if holding() then return done(nil, take(tonumber(h), true)) end

  -- A parked index first: of the wanted host, else of the first host not skipped. Each jump
  -- passes one skipped host, so this is at most (skipped hosts + 1) lookups.
  local pick
  local none = not anyParked()
  if A[13] ~= '' and not none then
    pick = redis.call('ZRANGEBYLEX', parkq, '(' .. A[13] .. ' ', '(' .. A[13] .. '!', 'LIMIT', 0, 1)[1]
  end
  local skip = {}
  for host in string.gmatch(A[12], '%S+') do skip[host] = true end
  local skipped = {}
  if not pick and not none then
    local from = '-'
    while true do
      local p = redis.call('ZRANGEBYLEX', parkq, from, '+', 'LIMIT', 0, 1)[1]
      if not p then break end
      local host = string.sub(p, 1, -12)
      if not skip[host] then
        pick = p
        break
      end
      skipped[#skipped + 1] = host
      from = '(' .. host .. '!'
    end
  end
  if pick then
    redis.call('ZREM', parkq, pick)
    local n = tonumber(string.sub(pick, -10))
    return done(n, take(n, true))
  end

  if m[6] >= total then
    if #skipped > 0 then return done(nil, {3, unpack(skipped)}) end
    return done(nil, {0})
  end
  if A[12] == '' then
    local n = m[6]
    m[6], nextChanged = n + 1, true
    return done(n, take(n, false))
  end

  local paused = {}
  for host in string.gmatch(A[14], '%S+') do paused[host] = true end
  local n, ahead = m[6], 0
  while n < total do
    local url = redis.call('LINDEX', urls, n)
    local host = hostOf(url)
    if not (host and skip[host]) then
      m[6], nextChanged = n + 1, true
      return done(n, {1, n, url})
    end
    local info = {waitingFor = paused[host] and 'pause' or 'host', host = host, attempts = 0, spent = 0, pausedAt = cjson.null}
    park(n, cjson.encode(info), host)
    n, ahead = n + 1, ahead + 1
    if ahead >= AHEAD then break end
  end
  m[6], nextChanged = n, true
  redis.call('PEXPIRE', parked, ttl)
  redis.call('PEXPIRE', parkq, ttl)
  return done(nil, {4})
end

local replies = {}
for base = 0, #ARGV - 1, 14 do
  replies[#replies + 1] = step({unpack(ARGV, base + 1, base + 14)})
end
flushMeta()
return replies
