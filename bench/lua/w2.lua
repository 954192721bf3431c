-- W2: throughput of eager submission on a warm ProcessPoolExecutor(2)
-- (the module's default start method, spawn): N = 20,000 tasks (x + 1).
-- Usage: lua5.4 bench/lua/w2.lua [N=20000]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"
B.need_process_pool(futures, "W2")

local N = math.tointeger(tonumber(arg[1])) or 20000
local function inc(x) return x + 1 end

local ex <close> = futures.ProcessPoolExecutor(2)
ex:submit(inc, 0):result()
local fs = {}
local t0 = futures.now()
for i = 1, N do fs[i] = ex:submit(inc, i) end
local total = 0
for i = 1, N do total = total + fs[i]:result() end
local dt = futures.now() - t0
assert(total == N * (N + 1) // 2 + N, total)
B.emit("W2", "tasks_per_s", string.format("%.0f", N / dt))
