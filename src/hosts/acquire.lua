--[[
acquire: takes a slot (a lease) on one host, if the host allows another fetch to start now.
Time is Redis' own clock (TIME), so workers on machines with skewed clocks agree.

KEYS[1] slots     zset lease id -> expiry ms
KEYS[2] state     hash pausedUntil, next, delayMs, limit, wanted
KEYS[3] job       zset of one job's leases on this host (untouched when jobLimit is 0)
ARGV[1] lease     the lease id
ARGV[2] limit     leases at once on the host (0: no cap)
ARGV[3] leaseMs   how long the lease lives without renewal
ARGV[4] delayMs   spacing between two starts on this host (0: none)
ARGV[5] jobLimit  leases at once for this job on this host (0: no job cap)
Reply: {code, untilMs, waitMs}
  code 0 granted (untilMs = the lease's expiry)
  code 1 full: the host has `limit` leases (untilMs = the soonest expiry among them)
  code 2 paused until untilMs
  code 3 spaced: the next start is allowed at untilMs
  code 4 job full: the job has `job limit` leases on the host (untilMs = soonest expiry)
A refusal for 1 or 4 sets `wanted`, so the next release publishes the host's name.
]]
local slots, state, job = KEYS[1], KEYS[2], KEYS[3]
local lease, limit = ARGV[1], tonumber(ARGV[2])
local leaseMs, delayMs, jobLimit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Extends a key's expiry to at least `ms`, never shortens it: every key here expires.
local function keep (key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
local function refuse (code, key)
  redis.call('HSET', state, 'wanted', 1)
  keep(state, leaseMs)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local soonest = tonumber(first[2] or now)
  return {code, soonest, soonest - now}
end

local paused = tonumber(redis.call('HGET', state, 'pausedUntil') or '0')
if paused > now then return {2, paused, paused - now} end
local nextStart = tonumber(redis.call('HGET', state, 'next') or '0')
if nextStart > now then return {3, nextStart, nextStart - now} end

redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
if limit > 0 and redis.call('ZCARD', slots) >= limit then return refuse(1, slots) end
if jobLimit > 0 then
  redis.call('ZREMRANGEBYSCORE', job, '-inf', now)
  if redis.call('ZCARD', job) >= jobLimit then return refuse(4, job) end
  redis.call('ZADD', job, now + leaseMs, lease)
  keep(job, leaseMs)
end
redis.call('ZADD', slots, now + leaseMs, lease)
keep(slots, leaseMs)
redis.call('HSET', state, 'delayMs', delayMs, 'limit', limit)
if delayMs > 0 then redis.call('HSET', state, 'next', now + delayMs) end
keep(state, math.max(leaseMs, delayMs))
return {0, now + leaseMs, leaseMs}
