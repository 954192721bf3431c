-- 004 concurrent.futures tutorial, "Adding Callbacks to Futures": callbacks
-- fire as tasks complete while the main thread does something else.
local futures = require "concurrent.futures"

local SCALE = 1 / 10 -- the document's tasks take 1 s and main waits 2 s

local function compute(n)
  futures.sleep(1 * SCALE)
  return n * n
end

-- Callback executed when future completes. It runs in the main state,
-- whenever main enters the runtime (here during futures.sleep).
local function on_complete(future)
  local ok, result = pcall(future.result, future)
  if ok then
    print(("Callback: result is %d"):format(result))
  else
    print(("Callback: task failed with %s"):format(result))
  end
end

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 3}
  for i = 0, 4 do
    local future = executor:submit(compute, i)
    future:add_done_callback(on_complete)
  end

  -- Main thread continues while callbacks fire
  print("Main thread: tasks submitted")
  futures.sleep(2 * SCALE)
  print("Main thread: done waiting")
end
