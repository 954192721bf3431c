-- 000 concurrent.futures notebook, conf6.py: cancel() succeeds only for
-- tasks that have not started.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local print = require "lineprint" -- whole lines from every thread

local SCALE = 1 / 2 -- the document sleeps 0.5 s

local function task(n)
  print(("%d: sleeping"):format(n))
  futures.sleep(0.5 * SCALE)
  print(("%d: done"):format(n))
  return n / 10
end

-- Python stores the argument on the future (f.arg = i); a Future is userdata
-- without fields of its own, so the callback gets it as a second argument.
local function done(fn, arg)
  if fn:cancelled() then
    print(("%d: canceled"):format(arg))
  elseif fn:done() then
    print(("%d: not canceled"):format(arg))
  end
end

local ex = futures.ThreadPoolExecutor{max_workers = 2}
print("main: starting")
local tasks = {}

for i = 10, 1, -1 do
  print(("main: submitting %d"):format(i))
  local f = ex:submit(task, i)
  f:add_done_callback(function(fut) done(fut, i) end)
  tasks[#tasks + 1] = {i, f}
end

-- Python's submit() starts a worker thread before returning; these workers
-- start in the background, so let the first two tasks start, as they have
-- in the document's output, before cancelling.
while not (tasks[1][2]:running() and tasks[2][2]:running()) do futures.sleep(0.001) end

for k = #tasks, 1, -1 do
  local i, t = tasks[k][1], tasks[k][2]
  if not t:cancel() then
    print(("main: did not cancel %d"):format(i))
  end
end

ex:shutdown()
