-- needs: ProcessPoolExecutor
-- 000 concurrent.futures notebook, conf9.py: map() over a process pool; each
-- worker process is reused for several tasks.
local futures = require "concurrent.futures"

local function task(n)
  return n, futures.getpid()
end

-- Python needs the `if __name__ == '__main__'` guard because its workers
-- import the main module; luafutures sends the task itself, so none is needed.
local ex <close> = futures.ProcessPoolExecutor{max_workers = 2}
for _, n, pid in ex:map(task, {5, 4, 3, 2, 1}) do
  print(("ran task %d in process %d"):format(n, pid))
end
