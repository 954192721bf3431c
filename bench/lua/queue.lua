-- Q1/Q2: futures.Queue between two thread workers (Q1) and between the main
-- state and a worker (Q2), against Python's queue.Queue with two threads.
--   throughput [N=1000000]  Q1: one producer task puts N small integers,
--                           one consumer task takes them; items/s
--   roundtrip [N=20000]     Q2: main puts i, a worker gets it and puts it
--                           back on a second queue, main gets it; median
--                           and p99 of one round trip, us
-- Usage: lua5.4 bench/lua/queue.lua throughput|roundtrip [N]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local mode = arg[1] or "throughput"
local N = math.tointeger(tonumber(arg[2]))

-- Both workers started (a state each) before anything is timed.
local function warm_pool(n)
  local ex = futures.ThreadPoolExecutor(n)
  local gate, fs = futures.Future(), {}
  for i = 1, n do fs[i] = ex:submit(function(g) return g:result() end, gate) end
  gate:set_result(true)
  futures.wait(fs)
  return ex
end

if mode == "throughput" then
  N = N or 1000000
  local ex <close> = warm_pool(2)
  local q = futures.Queue()
  local t0 = futures.now()
  local consumer = ex:submit(function(q)
    local sum = 0
    for v in q:iter() do sum = sum + v end
    return sum
  end, q)
  ex:submit(function(q, n)
    for i = 1, n do q:put(i) end
    q:shutdown()
  end, q, N)
  local sum = consumer:result()
  local dt = futures.now() - t0
  assert(sum == N * (N + 1) // 2, sum)
  B.emit("Q1", "items_per_s", string.format("%.0f", N / dt))
elseif mode == "roundtrip" then
  N = N or 20000
  local ex <close> = warm_pool(1)
  local req, rep = futures.Queue(), futures.Queue()
  local echo = ex:submit(function(req, rep)
    for v in req:iter() do rep:put(v) end
  end, req, rep)
  local now, samples = futures.now, {}
  for i = 1, 1000 do req:put(i) rep:get() end -- warm-up
  for i = 1, N do
    local t = now()
    req:put(i)
    local v = rep:get()
    samples[i] = now() - t
    assert(v == i)
  end
  req:shutdown()
  echo:result()
  table.sort(samples)
  B.emit("Q2", "median_us", string.format("%.2f", B.quantile(samples, 0.5) * 1e6),
         "p99_us", string.format("%.2f", B.quantile(samples, 0.99) * 1e6))
else
  error("usage: queue.lua throughput|roundtrip [N]")
end
