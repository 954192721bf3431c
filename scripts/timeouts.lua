-- 004 concurrent.futures tutorial, "Timeout Handling": result() and
-- as_completed() give up with TimeoutError; the tasks keep running.
local futures = require "concurrent.futures"

local SCALE = 1 / 5 -- the document's tasks take 1 to 5 s and it waits 2 s

local function slow_task(duration)
  futures.sleep(duration * SCALE)
  return ("Completed after %ds"):format(duration)
end

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 2}
  local future = executor:submit(slow_task, 5)

  -- Wait max 2 (scaled) seconds for result
  local ok, result = pcall(future.result, future, 2 * SCALE)
  if ok then
    print(result)
  elseif futures.TimeoutError:is(result) then
    print("Task timed out!")
    -- Note: task continues running in background
  else
    error(result, 0)
  end

  -- Timeout with as_completed
  local fs = {}
  for i, d in ipairs{1, 3, 5} do fs[i] = executor:submit(slow_task, d) end
  ok, result = pcall(function()
    for f in futures.as_completed(fs, 2 * SCALE) do
      print(f:result())
    end
  end)
  if not ok then
    if not futures.TimeoutError:is(result) then error(result, 0) end
    print("Some tasks didn't complete in time")
  end
end
