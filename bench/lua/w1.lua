-- W1: throughput of eager submission on a warm ThreadPoolExecutor(2).
-- Submit N trivial tasks (x + 1), then collect every result; tasks/s from
-- the first submit to the last result (the pool has run one task before).
-- With "closure", the task is a closure over one local (x + one): the
-- worker loads its prototype once and sets the upvalue per task.
-- Usage: lua5.4 bench/lua/w1.lua [N=100000] [closure]   (from the repo root)
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local N = math.tointeger(tonumber(arg[1])) or 100000
local CLOSURE = arg[2] == "closure"
local one = 1
local inc
if CLOSURE then
  inc = function(x) return x + one end
else
  inc = function(x) return x + 1 end
end

local ex <close> = futures.ThreadPoolExecutor(2)
ex:submit(inc, 0):result()
local fs = {}
local t0, c0 = futures.now(), B.main_cpu_ns()
for i = 1, N do fs[i] = ex:submit(inc, i) end
local total = 0
for i = 1, N do total = total + fs[i]:result() end
local dt = futures.now() - t0
local cpu = (B.main_cpu_ns() - c0) / N
assert(total == N * (N + 1) // 2 + N, total)
B.emit(CLOSURE and "W1c" or "W1", "tasks_per_s", string.format("%.0f", N / dt),
       "main_cpu_ns_per_task", string.format("%.0f", cpu))
