-- W4: latency of one submit(f):result() round trip on ThreadPoolExecutor(1).
-- N sequential round trips on a warm pool, each timed on its own; prints
-- median, p99 and mean in microseconds.
-- Usage: lua5.4 bench/lua/w4.lua [N=10000]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local N = math.tointeger(tonumber(arg[1])) or 10000
local function f() return nil end
local now = futures.now

local ex <close> = futures.ThreadPoolExecutor(1)
ex:submit(f):result()
local samples = {}
for k = 1, N do
  local t0 = now()
  ex:submit(f):result()
  samples[k] = now() - t0
end
local sum = 0
for k = 1, N do sum = sum + samples[k] end
table.sort(samples)
B.emit("W4", string.format("median_us %.2f p99_us %.2f mean_us %.2f",
  B.quantile(samples, 0.5) * 1e6, B.quantile(samples, 0.99) * 1e6, sum / N * 1e6))
