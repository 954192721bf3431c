-- 000 concurrent.futures notebook, conf2.py: submit() one task and watch its
-- future change state.
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
local f = ex:submit(task, 5)
print(("main: future: %s"):format(f))
print("main: waiting for results")
local result = f:result()
print(("main: result: %s"):format(result))
print(("main: future after result: %s"):format(f))
