-- needs: DeadlockError
-- 000 concurrent.futures notebook deadlock2.py, and 002 Python docs
-- "ThreadPoolExecutor Objects" second deadlock: the only worker waits on a
-- task queued behind itself. Python hangs; luafutures raises DeadlockError.
local futures = require "concurrent.futures"

-- Lua has no integer pow (`^` always gives a float), so pow multiplies.
local function pow(base, exp)
  local r = 1
  for _ = 1, exp do r = r * base end
  return r
end

local executor = futures.ThreadPoolExecutor{max_workers = 1}

-- The executor is a handle: the task's upvalue is this very pool.
local function wait_on_future()
  local f = executor:submit(pow, 5, 2)
  -- This will never complete because there is only one worker thread and
  -- it is executing this function.
  print(f:result())
end

local f = executor:submit(wait_on_future)
local ok, err = pcall(f.result, f)
print(ok and "no deadlock" or tostring(err))
