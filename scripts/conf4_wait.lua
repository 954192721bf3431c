-- 000 concurrent.futures notebook, conf4.py: wait() for all futures.
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

-- Python prints the named tuple of two sets; here wait() returns two arrays.
local function show(fs)
  local names = {}
  for i, f in ipairs(fs) do names[i] = tostring(f) end
  return "{" .. table.concat(names, ", ") .. "}"
end
local done, not_done = futures.wait(wait_for)
print(("done=%s, not_done=%s"):format(show(done), show(not_done)))
