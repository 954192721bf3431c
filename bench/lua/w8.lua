-- W8: the main thread's CPU while it waits for many tasks of 100 us on a
-- ThreadPoolExecutor(2), by as_completed and by the drain loop
--   while #pending > 0 do done, pending = wait(pending, FIRST_COMPLETED) end
-- for 10^3, 10^4 and 10^5 tasks.  CPU is the main thread's own (Linux
-- /proc/<pid>/task/<pid>/schedstat, ns on a CPU), from the first submit to
-- the last future seen, divided by the task count: a cost that grows with
-- the count shows as a ratio above 1 between the last and the first size.
-- Usage: lua5.4 bench/lua/w8.lua [as_completed|drain|both] [MAXN=100000]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local MODE = arg[1] or "both"
local MAXN = math.tointeger(tonumber(arg[2])) or 100000

local main_cpu_ns = B.main_cpu_ns

local function task() futures.sleep(0.0001) return 1 end

local ways = {}
function ways.as_completed(ex, n)
  local fs = {}
  for i = 1, n do fs[i] = ex:submit(task) end
  local seen = 0
  for f in futures.as_completed(fs) do seen = seen + f:result() end
  return seen
end
function ways.drain(ex, n)
  local pending = {}
  for i = 1, n do pending[i] = ex:submit(task) end
  local seen, done = 0, nil
  while #pending > 0 do
    done, pending = futures.wait(pending, nil, futures.FIRST_COMPLETED)
    for _, f in ipairs(done) do seen = seen + f:result() end
  end
  return seen
end

local ex <close> = futures.ThreadPoolExecutor(2)
ex:submit(task):result()
for _, way in ipairs(MODE == "both" and {"as_completed", "drain"} or {MODE}) do
  local out, first, last = {}, nil, nil
  local n = 1000
  while n <= MAXN do
    collectgarbage("collect") -- the last size's futures are not this one's cost
    local c0 = main_cpu_ns()
    assert(ways[way](ex, n) == n)
    local per = (main_cpu_ns() - c0) / n
    out[#out + 1] = string.format("%s_ns_%d %.0f", way, n, per)
    first = first or per
    last = per
    n = n * 10
  end
  out[#out + 1] = string.format("%s_growth %.2f", way, last / first)
  B.emit("W8", table.concat(out, " "))
end
