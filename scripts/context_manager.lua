-- 004 concurrent.futures tutorial, "Executor Context Manager": a
-- to-be-closed executor waits for its tasks, like Python's `with`.
local futures = require "concurrent.futures"

local SCALE = 1 / 10 -- the document's tasks take 1 s

local function task(n)
  futures.sleep(1 * SCALE)
  return n * 2
end

-- Context manager - automatic cleanup
local fs = {}
do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 3}
  for i = 0, 4 do fs[#fs + 1] = executor:submit(task, i) end
  -- Executor waits for all tasks when leaving the block
end

print("All tasks completed")
-- Not in the document: every future is done once the block has ended.
local done = 0
for _, f in ipairs(fs) do if f:done() then done = done + 1 end end
print(("%d of %d futures done"):format(done, #fs))

-- Manual management (not recommended)
local executor = futures.ThreadPoolExecutor{max_workers = 3}
local ok, err = pcall(function()
  fs = {}
  for i = 0, 4 do fs[#fs + 1] = executor:submit(task, i) end
end)
executor:shutdown(true) -- Must call explicitly, whatever happened (Python's finally)
if not ok then error(err, 0) end
