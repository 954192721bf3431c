-- 000 concurrent.futures notebook, conf8.py: a to-be-closed executor waits
-- for its tasks when the block ends, like Python's `with`.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local print = require "lineprint" -- whole lines from every thread

local function task(n)
  print(n)
end

do
  local ex <close> = futures.ThreadPoolExecutor{max_workers = 2}
  print("main: starting")
  ex:submit(task, 1)
  ex:submit(task, 2)
  ex:submit(task, 3)
  ex:submit(task, 4)
end

print("main: done")
