--[[
renew: moves the expiry of a holder's leases on one host forward (a live worker does this
every leaseMs / 2; a dead one stops, and its leases lapse within leaseMs).

KEYS[1] slots     zset lease id -> expiry ms
KEYS[2] job       the leases' job zset, or any key of the host when they have none
ARGV[1] leaseMs   the new lifetime from now
ARGV[2] ids       the lease ids, separated by spaces
Reply: the number of leases renewed; a lease already gone (it lapsed) is not brought back.
]]
local slots, job = KEYS[1], KEYS[2]
local leaseMs = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local renewed = 0
for id in string.gmatch(ARGV[2], '%S+') do
  if redis.call('ZADD', slots, 'XX', 'CH', now + leaseMs, id) == 1 then
    renewed = renewed + 1
    redis.call('ZADD', job, 'XX', now + leaseMs, id)
  end
end
if renewed > 0 then
  if redis.call('PTTL', slots) < leaseMs then redis.call('PEXPIRE', slots, leaseMs) end
  if redis.call('PTTL', job) >= 0 and redis.call('PTTL', job) < leaseMs then redis.call('PEXPIRE', job, leaseMs) end
end
return renewed
