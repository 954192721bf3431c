-- needs: ProcessPoolExecutor
-- 000 concurrent.futures notebook, conf10.py: killing a worker process
-- breaks the pool; the next task fails with BrokenProcessPool.
local futures = require "concurrent.futures"

do
  local ex <close> = futures.ProcessPoolExecutor{max_workers = 2}
  print("getting the pid for one worker")
  -- futures.getpid is a C function of a loaded module: it is sent by name.
  local f1 = ex:submit(futures.getpid)
  local pid1 = f1:result()

  print(("killing process %d"):format(pid1))
  -- Lua has no os.kill; the kill(1) command sends the signal.
  os.execute(("kill -HUP %d"):format(pid1))

  print("submitting another task")
  -- The pool may already know it is broken, in which case submit() raises,
  -- or learn it while the task waits, in which case result() raises.
  local ok, e = pcall(function()
    local f2 = ex:submit(futures.getpid)
    return f2:result()
  end)
  if not ok and futures.BrokenProcessPool:is(e) then
    print(("could not start new tasks: %s"):format(e))
  elseif not ok then
    error(e, 0)
  else
    print(("unexpected: the task ran in process %d"):format(e))
  end
end
