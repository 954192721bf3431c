-- 000 concurrent.futures notebook, conf3.py: as_completed() yields futures
-- in the order they finish.
local futures = require "concurrent.futures"

local SCALE = 1 / 5 -- the document sleeps up to 1 s

local function task(n)
  futures.sleep(math.random() * SCALE)
  return n, n / 10
end

local ex = futures.ThreadPoolExecutor{max_workers = 5}
print("main: starting")

local wait_for = {}
for i = 5, 1, -1 do wait_for[#wait_for + 1] = ex:submit(task, i) end

for f in futures.as_completed(wait_for) do
  print(("main: result: (%d, %s)"):format(f:result()))
end
