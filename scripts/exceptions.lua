-- 004 concurrent.futures tutorial, "Exception Handling": a task's error is
-- raised again by result() and returned by exception().
local futures = require "concurrent.futures"

local function risky_task(n)
  if n == 3 then
    -- Lua has no ValueError; a string error at level 0 carries just the message.
    error(("Bad value: %d"):format(n), 0)
  end
  return n * 2
end

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 3}
  local fs = {}
  for i = 0, 4 do fs[executor:submit(risky_task, i)] = i end

  for future in futures.as_completed(fs) do
    local n = fs[future]
    local ok, result = pcall(future.result, future)
    if ok then
      print(("Task %d: %d"):format(n, result))
    else
      print(("Task %d failed: %s"):format(n, result))
    end
  end

  -- Alternative: check exception without raising. (The document waits with
  -- result(), which raises this very error; exception() waits without.)
  local future = executor:submit(risky_task, 3)
  if future:exception() ~= nil then
    print(("Exception occurred: %s"):format(future:exception()))
  end
end
