-- 000 concurrent.futures notebook, conf1.py: map() returns results in input
-- order whatever order the tasks finish in.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local print = require "lineprint" -- whole lines from every thread

local SCALE = 1 / 10 -- the document sleeps n / 10 seconds

local function task(n)
  print(("%s: sleeping %d"):format(futures.thread_name(), n))
  futures.sleep(n * SCALE)
  print(("%s: done with %d"):format(futures.thread_name(), n))
  return n * SCALE
end

local ex = futures.ThreadPoolExecutor{max_workers = 2}
print("main: starting")
local results = ex:map(task, {5, 4, 3, 2, 1})
print(("main: unprocessed results %s"):format(results))
print("main: waiting for real results")
local real_results = results:collect()
print(("main: results: {%s}"):format(table.concat(real_results, ", ")))
