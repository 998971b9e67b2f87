--[[
  Takes `n` URLs into a tenant's count of pending URLs if that stays within `max`.

  Input:
    KEYS[1] pending   string: the tenant's count of pending URLs

    ARGV[1] n         URLs to admit
    ARGV[2] max       the most the count may reach

  Output: the new count, or -1 when the URLs do not fit (then nothing changed).
]]
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return -1 end
return redis.call('INCRBY', KEYS[1], ARGV[1])
