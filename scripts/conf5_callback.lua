-- 000 concurrent.futures notebook, conf5.py: a done callback that checks how
-- the future ended.
local futures = require "concurrent.futures"

local SCALE = 1 / 5 -- the document sleeps 0.5 s

local function task(n)
  print(("%d: sleeping"):format(n))
  futures.sleep(0.5 * SCALE)
  print(("%d: done"):format(n))
  return n / 10
end

-- Python stores the argument on the future (f.arg = 5); a Future is userdata
-- without fields of its own, so the callback gets it as a second argument.
local function done(fn, arg)
  if fn:cancelled() then
    print(("%d: canceled"):format(arg))
  elseif fn:done() then
    local err = fn:exception()
    if err then
      print(("%d: error returned: %s"):format(arg, err))
    else
      local result = fn:result()
      print(("%d: value returned: %s"):format(arg, result))
    end
  end
end

local ex = futures.ThreadPoolExecutor{max_workers = 2}
print("main: starting")
local f = ex:submit(task, 5)
f:add_done_callback(function(fut) done(fut, 5) end)
local result = f:result()
