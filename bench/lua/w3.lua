-- W3: ex:map(square, 0 .. N-1, {chunksize = 1000}) on a warm pool of 2,
-- results summed; items/s from the map call to the last result.  The input
-- is an iterator function, like Python's range().
-- Usage: lua5.4 bench/lua/w3.lua thread|process [N=1000000]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local kind = arg[1]
assert(kind == "thread" or kind == "process", "usage: w3.lua thread|process [N]")
local N = math.tointeger(tonumber(arg[2])) or 1000000
if kind == "process" then B.need_process_pool(futures, "W3") end

local function square(x) return x * x end

local ex <close> = kind == "thread" and futures.ThreadPoolExecutor(2)
                   or futures.ProcessPoolExecutor(2)
ex:submit(square, 0):result()
local t0 = futures.now()
local i = -1
local function range()
  i = i + 1
  if i < N then return i end
end
local total = 0
for _, v in ex:map(square, range, {chunksize = 1000}) do total = total + v end
local dt = futures.now() - t0
assert(total == (N - 1) * N * (2 * N - 1) // 6, total)
B.emit("W3", kind .. "_items_per_s", string.format("%.0f", N / dt))
