-- 004 concurrent.futures tutorial, "Cancelling Tasks": queued tasks can be
-- cancelled, a running one cannot.
local futures = require "concurrent.futures"

local SCALE = 1 / 10 -- the document's tasks take 2 s

local function long_task(n)
  futures.sleep(2 * SCALE)
  return n
end

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 1}
  -- Submit multiple tasks to single worker
  local future1 = executor:submit(long_task, 1)
  local future2 = executor:submit(long_task, 2) -- Queued, not started
  local future3 = executor:submit(long_task, 3) -- Queued, not started

  futures.sleep(0.1) -- Let first task start

  -- Try to cancel queued tasks
  local cancelled2 = future2:cancel()
  local cancelled3 = future3:cancel()

  print(("Future 2 cancelled: %s"):format(cancelled2)) -- true
  print(("Future 3 cancelled: %s"):format(cancelled3)) -- true
  print(("Future 1 cancelled: %s"):format(future1:cancel())) -- false (already running)
end
