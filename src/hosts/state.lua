--[[
state: what a host looks like now, for visibility (read only).

KEYS[1] slots     zset lease id -> expiry ms
KEYS[2] state     hash of the host
KEYS[3] strikes   string: the strike counter
(no ARGV)
Reply: {inFlight (live leases), pausedUntil (ms, 0: not paused), delayMs, next start (ms, 0:
        now), strikes, now (Redis' clock, ms)}
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local inFlight = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local s = redis.call('HMGET', KEYS[2], 'pausedUntil', 'delayMs', 'next')
local paused = tonumber(s[1] or '0')
if paused <= now then paused = 0 end
local nextStart = tonumber(s[3] or '0')
if nextStart <= now then nextStart = 0 end
return {inFlight, paused, tonumber(s[2] or '0'), nextStart, tonumber(redis.call('GET', KEYS[3]) or '0'), now}
