-- 000 concurrent.futures notebook, conf7.py: a task's error is kept in its
-- future, returned by exception() and raised again by result().
local futures = require "concurrent.futures"

local function task(n)
  print(("%d: starting"):format(n))
  -- Lua has no ValueError; a string error at level 0 carries just the message.
  error(("the value %d is no good"):format(n), 0)
end

local ex = futures.ThreadPoolExecutor{max_workers = 2}
print("main: starting")
local f = ex:submit(task, 5)

local err = f:exception()
print(("main: error: %s"):format(err))

local ok, e = pcall(f.result, f)
if not ok then
  print(('main: saw error "%s" when accessing result'):format(e))
end
