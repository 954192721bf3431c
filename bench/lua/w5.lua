-- W5: 4 CPU-bound tasks, each the sum of i*i for i = 0 .. N-1 (N = 5,000,000;
-- integer arithmetic, it wraps past 2^63 as Lua integers do).  Sequential,
-- then ex:map on ThreadPoolExecutor(2), then on ProcessPoolExecutor(2)
-- (spawn, the default; fork too when the module accepts it).  Pool creation
-- and shutdown are counted, as in Python's figure.
-- Usage: lua5.4 bench/lua/w5.lua [N=5000000]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local N = math.tointeger(tonumber(arg[1])) or 5000000
local TASKS = 4

local function work(n)
  local s = 0
  for i = 0, n - 1 do s = s + i * i end
  return s
end

local args = {}
for k = 1, TASKS do args[k] = N end

local t0 = futures.now()
local expect = work(N)
for _ = 2, TASKS do assert(work(N) == expect) end
local seq = futures.now() - t0

local function timed(make)
  local t = futures.now()
  local ex = make()
  local res = ex:map(work, args):collect()
  ex:shutdown(true)
  local dt = futures.now() - t
  assert(res.n == TASKS, res.n)
  for k = 1, TASKS do assert(res[k] == expect, res[k]) end
  return dt
end

local out = {string.format("seq_s %.4f", seq)}
local function add(name, dt)
  out[#out + 1] = string.format("%s_s %.4f %s_speedup %.3f", name, dt, name, seq / dt)
end
add("thread", timed(function() return futures.ThreadPoolExecutor(2) end))
for _, method in ipairs{"spawn", "fork"} do
  local ok, ex = B.process_pool(futures, method)
  if futures.ProcessPoolExecutor == nil then
    break  -- no process pool in this build: its rows read n/a
  elseif ok then
    ex:shutdown(true)
    add(method, timed(function() return select(2, B.process_pool(futures, method)) end))
  else
    io.stderr:write("W5 ", method, ": ", tostring(ex), "\n")
  end
end
B.emit("W5", table.concat(out, " "))
