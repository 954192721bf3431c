-- 001 "The concurrent.futures module", "Deadlocks", the restructured code:
-- the task returns its inner future instead of waiting on it, and main
-- waits on both.
local futures = require "concurrent.futures"

-- Lua has no zip(); this one returns the pairs as a table of tables.
local function zip(a, b)
  local out = {}
  for i = 1, math.min(#a, #b) do out[i] = {a[i], b[i]} end
  return out
end

local executor = futures.ThreadPoolExecutor{max_workers = 3}

-- A future is a handle: the one returned is the one the task submitted.
local function wait_forever()
  local my_future = executor:submit(zip, {1, 2, 3}, {4, 5, 6})
  return my_future
end

local fut = executor:submit(wait_forever)
local result = fut:result()
local shown = {}
for i, p in ipairs(result:result()) do shown[i] = ("(%d, %d)"):format(p[1], p[2]) end
print("[" .. table.concat(shown, ", ") .. "]")
