--[[
  Helpers shared by the scripts that change a job (step.lua, finish.lua); the loader prepends
  this file to each of them.

  They assume the job's KEYS in this order: KEYS[1] meta, KEYS[2] urls, KEYS[3] results,
  KEYS[4] held, KEYS[5] events, (KEYS[6] pending, not the job's,) KEYS[7] parked,
  KEYS[8] parkq.

  Event entries: `e state m <meta as a JSON array of field, value>` and
  `e result i <index> u <url> r <result JSON>`.
]]

-- Moves the TTL of every key of the job to `ttl` ms from now.
local function touch(ttl)
  for _, i in ipairs({1, 2, 3, 4, 5, 7, 8}) do redis.call('PEXPIRE', KEYS[i], ttl) end
end

-- Appends the job's whole meta hash to its history.
local function stateEvent()
  redis.call('XADD', KEYS[5], '*', 'e', 'state', 'm', cjson.encode(redis.call('HGETALL', KEYS[1])))
end

-- Appends the result of URL `idx` to the job's history.
local function resultEvent(idx, result)
  redis.call('XADD', KEYS[5], '*', 'e', 'result', 'i', idx, 'u', redis.call('LINDEX', KEYS[2], idx), 'r', result)
end
