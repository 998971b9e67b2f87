--[[
release: gives a lease back and records what the fetch taught about the host, in one call.
Also used without a lease to pause a host (a 429 seen outside a lease, an operator).

KEYS[1] slots     zset lease id -> expiry ms
KEYS[2] state     hash of the host
KEYS[3] job       the lease's job zset, or any key of the host
KEYS[4] strikes   string: the strike counter
ARGV[1] lease     lease id ('' for none)
ARGV[2] outcome   'none' (nothing learnt), 'ok' (a success: strikes reset), 'pause' (pause
                  for pauseMs), 'strike' (one more 429/503 without Retry-After: pause for
                  min(baseMs * 2^(strikes-1), maxMs); while the host is paused a strike
                  counts for nothing: the other fetches of the same burst answer 429 too)
ARGV[3] pauseMs   the pause asked for
ARGV[4] baseMs    first strike pause
ARGV[5] maxMs     longest strike pause
ARGV[6] memoryMs  the counter forgets after this long without a new strike
ARGV[7] channel   where the host's name is published
ARGV[8] host      the host name: the message of a release, `pause <host>` that of a pause
Reply: {released (1|0), pausedUntil (ms, 0 when not paused by this call), strikes (0 when
        this call added none)}
When a lease was released and someone waits (`wanted`), or the call paused the host, the
host's name is published on the channel: waiters ask again (and learn of the pause), and
every worker learns to send that host's URLs through the gate even with no cap.
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

if pausedUntil > 0 then
  redis.call('HDEL', state, 'wanted')
  redis.call('PUBLISH', ARGV[7], 'pause ' .. ARGV[8])
elseif released == 1 and redis.call('HDEL', state, 'wanted') == 1 then
  redis.call('PUBLISH', ARGV[7], ARGV[8])
end
return {released, pausedUntil, count}
