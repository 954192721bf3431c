-- needs: DeadlockError
-- 001 "The concurrent.futures module", "Deadlocks": the only worker waits on
-- a task queued behind itself. Python waits forever; luafutures raises
-- DeadlockError in the waiting task, and its future carries it to main.
local futures = require "concurrent.futures"

-- Lua has no zip(); this one returns the pairs as a table of tables.
local function zip(a, b)
  local out = {}
  for i = 1, math.min(#a, #b) do out[i] = {a[i], b[i]} end
  return out
end

local executor = futures.ThreadPoolExecutor{max_workers = 1}

-- This function would wait forever, as there's only one thread in the pool.
-- The executor is a handle: the task's upvalue is this very pool.
local function wait_forever()
  local my_future = executor:submit(zip, {1, 2, 3}, {4, 5, 6})
  local result = my_future:result()
  print(result)
end

local f = executor:submit(wait_forever)
local ok, err = pcall(f.result, f)
print(ok and "no deadlock" or tostring(err))
