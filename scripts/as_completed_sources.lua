-- 004 concurrent.futures tutorial, "Processing Results as They Complete":
-- as_completed() over a table whose keys are the futures.
local futures = require "concurrent.futures"

local SCALE = 1 / 10 -- the document sleeps 0.5 to 2 s

local function fetch_data(source_id)
  local delay = 0.5 + math.random() * 1.5
  futures.sleep(delay * SCALE)
  return ("Data from source %d (took %.2fs)"):format(source_id, delay)
end

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 5}
  -- Submit all tasks
  local future_to_source = {}
  for src = 0, 4 do
    future_to_source[executor:submit(fetch_data, src)] = src
  end

  -- Process results as they complete
  for future in futures.as_completed(future_to_source) do
    local source = future_to_source[future]
    local ok, result = pcall(future.result, future)
    if ok then
      print(("Source %d: %s"):format(source, result))
    else
      print(("Source %d failed: %s"):format(source, result))
    end
  end
end
