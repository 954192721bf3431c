-- 004 concurrent.futures tutorial, "Using wait() for Completion Control":
-- wait for the first future, then for the rest.
local futures = require "concurrent.futures"

local SCALE = 1 / 10 -- the document sleeps 1 to 3 s

local function task(task_id, duration)
  futures.sleep(duration * SCALE)
  return ("Task %d done"):format(task_id)
end

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 3}
  local fs = {
    executor:submit(task, 1, 3),
    executor:submit(task, 2, 1),
    executor:submit(task, 3, 2),
  }

  -- Wait for first to complete
  local done, not_done = futures.wait(fs, nil, futures.FIRST_COMPLETED)
  print(("First completed: %s"):format(done[1]:result()))
  print(("Still running: %d"):format(#not_done))

  -- Wait for all remaining
  done, not_done = futures.wait(not_done, nil, futures.ALL_COMPLETED)
  for _, f in ipairs(done) do
    print(("Completed: %s"):format(f:result()))
  end
end
