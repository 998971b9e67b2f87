--[[
release: gives a lease back and records what the fetch taught about the host, in one call.
Also used without a lease to pause a host (a 429 seen outside a lease, an operator).

KEYS: [1] slots, [2] state, [3] job (the lease's job zset, or any key of the host), [4] strikes
ARGV: [1] lease id ('' for none)
      [2] outcome: 'none' (nothing learnt), 'ok' (a success: strikes reset), 'pause' (pause
          for ARGV[3] ms), 'strike' (one more 429/503 without Retry-After: pause for
          min(ARGV[4] * 2^(strikes-1), ARGV[5]) ms; while the host is paused a strike
          counts for nothing: the other fetches of the same burst answer 429 too)
      [3] pause ms, [4] strike base ms, [5] strike max ms, [6] strike memory ms (the counter
          forgets after this long without a new strike)
      [7] channel, [8] host name (the message)
Reply: {released (1|0), pausedUntil (ms, 0 when not paused by this call), strikes (0 when
        this call added none)}
When a lease was released or the host paused, and someone waits (`wanted`), the host's name
is published on the channel; the waiters ask again (and learn of the pause).
]]
local slots, state, job, strikes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lease, outcome = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function keep (key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

local released = 0
if lease ~= '' then
  released = redis.call('ZREM', slots, lease)
  redis.call('ZREM', job, lease)
end

local pauseMs, count = 0, 0
if outcome == 'ok' then
  redis.call('DEL', strikes)
elseif outcome == 'pause' then
  pauseMs = tonumber(ARGV[3])
elseif outcome == 'strike' and tonumber(redis.call('HGET', state, 'pausedUntil') or '0') <= now then
  count = redis.call('INCR', strikes)
  redis.call('PEXPIRE', strikes, ARGV[6])
  pauseMs = math.min(tonumber(ARGV[4]) * 2 ^ (count - 1), tonumber(ARGV[5]))
end

local pausedUntil = 0
if pauseMs > 0 then
  pausedUntil = now + math.floor(pauseMs)
  local current = tonumber(redis.call('HGET', state, 'pausedUntil') or '0')
  if current > pausedUntil then pausedUntil = current end
  redis.call('HSET', state, 'pausedUntil', pausedUntil)
  keep(state, pausedUntil - now)
end

if (released == 1 or pausedUntil > 0) and redis.call('HDEL', state, 'wanted') == 1 then
  redis.call('PUBLISH', ARGV[7], ARGV[8])
end
return {released, pausedUntil, count}
