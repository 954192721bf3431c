-- 004 concurrent.futures tutorial, "Using submit() and Future Objects":
-- submit() returns at once; done() polls, result() blocks.
local futures = require "concurrent.futures"

local SCALE = 1 / 10 -- the document sleeps 1 to 3 s

local function task(name, duration)
  futures.sleep(duration * SCALE)
  return ("%s completed in %ds"):format(name, duration)
end

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 3}
  -- Submit tasks - returns Future immediately
  local future1 = executor:submit(task, "Task A", 2)
  local future2 = executor:submit(task, "Task B", 1)
  local future3 = executor:submit(task, "Task C", 3)

  -- Check if done (non-blocking)
  print(("Task A done: %s"):format(future1:done()))

  -- Get result (blocking)
  print(future2:result()) -- Waits for completion
  print(future1:result())
  print(future3:result())
end
