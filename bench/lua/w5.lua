-- W5: 4 CPU-bound tasks, each the sum of i*i for i = 0 .. N-1 (N = 5,000,000;
-- integer arithmetic, it wraps past 2^63 as Lua integers do).  Sequential,
-- then ex:map on ThreadPoolExecutor(2), then on ProcessPoolExecutor(2)
-- (spawn, the default; fork too when the module accepts it).  Pool creation
-- and shutdown are counted, as in Python's figure.  A sequential run takes
-- 0.1 s here, where Python's takes 0.9 s, so one run is at the mercy of
-- the machine's other jobs: ROUNDS rounds each time the sequential work
-- right before every pool, and the speedup printed is the median of those
-- pairs (seconds are medians too).
-- Usage: lua5.4 bench/lua/w5.lua [N=5000000] [ROUNDS=5]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local N = math.tointeger(tonumber(arg[1])) or 5000000
local ROUNDS = math.tointeger(tonumber(arg[2])) or 5
local TASKS = 4

local function work(n)
  local s = 0
  for i = 0, n - 1 do s = s + i * i end
  return s
end

local args = {}
for k = 1, TASKS do args[k] = N end
local expect = work(N)

local function sequential()
  local t = futures.now()
  for _ = 1, TASKS do assert(work(N) == expect) end
  return futures.now() - t
end

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

local makers, names = {}, {}
local function kind(name, make)
  names[#names + 1] = name
  makers[name] = make
end
kind("thread", function() return futures.ThreadPoolExecutor(2) end)
for _, method in ipairs{"spawn", "fork"} do
  local ok, ex = B.process_pool(futures, method)
  if futures.ProcessPoolExecutor == nil then
    break  -- no process pool in this build: its rows read n/a
  elseif ok then
    ex:shutdown(true)
    kind(method, function() return select(2, B.process_pool(futures, method)) end)
  else
    io.stderr:write("W5 ", method, ": ", tostring(ex), "\n")
  end
end

local seqs, secs, speedups = {}, {}, {}
for _, name in ipairs(names) do secs[name], speedups[name] = {}, {} end
for _ = 1, ROUNDS do
  for _, name in ipairs(names) do
    local seq = sequential()
    local dt = timed(makers[name])
    seqs[#seqs + 1] = seq
    table.insert(secs[name], dt)
    table.insert(speedups[name], seq / dt)
  end
end
local function median(t)
  table.sort(t)
  return B.quantile(t, 0.5)
end
local out = {string.format("seq_s %.4f", median(seqs))}
for _, name in ipairs(names) do
  out[#out + 1] = string.format("%s_s %.4f %s_speedup %.3f", name,
                                median(secs[name]), name, median(speedups[name]))
end
B.emit("W5", table.concat(out, " "))
