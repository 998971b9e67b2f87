--[[
  Claims an Idempotency-Key: the first request stores its value; later ones get that value back.

  Input:
    KEYS[1] key       string: `pending|bound <job id> <request hash>`

    ARGV[1] value     what to store when the key is free
    ARGV[2] ttl       ms the stored value lives

  Output: the value already stored, or nil when this call stored ARGV[1].
]]
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
