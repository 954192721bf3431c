-- demo.lua: a tour of luafutures in one run (the README's first command).
-- Run from the repository root after `make`: lua5.4 scripts/demo.lua
-- (or bin/luafutures scripts/demo.lua). Each section shows one idea.
package.cpath = "./?.so;" .. package.cpath
local futures = require "concurrent.futures"

local sections = 0
local function section(title)
  sections = sections + 1
  print(("%s== %s =="):format(sections > 1 and "\n" or "", title))
end

local ex <close> = futures.ThreadPoolExecutor(futures.cpu_count())

section("CPU-bound work in parallel: every worker owns a lua_State")
local function is_prime(n)
  if n < 2 then return false end
  if n % 2 == 0 then return n == 2 end
  for i = 3, math.floor(math.sqrt(n)), 2 do
    if n % i == 0 then return false end
  end
  return true
end

local numbers = {112272535095293, 112582705942171, 115280095190773,
                 115797848077099, 1099726899285419}

local t0 = futures.now()
for _, n in ipairs(numbers) do is_prime(n) end
local sequential = futures.now() - t0

t0 = futures.now()
for i, prime in ex:map(is_prime, numbers) do
  print(("%d is prime: %s"):format(numbers[i], prime))
end
local parallel = futures.now() - t0
print(("sequential %.2fs, %d workers %.2fs: %.2fx"):format(
  sequential, futures.cpu_count(), parallel, sequential / parallel))

section("Futures: callbacks and as_completed, in the order tasks finish")
local fs = {}
for _, delay in ipairs{0.03, 0.01, 0.02} do
  local f = ex:submit(function(d) futures.sleep(d) return d, futures.thread_name() end, delay)
  f:add_done_callback(function(g) print("callback:", g) end)
  fs[f] = delay
end
for f in futures.as_completed(fs) do
  print(("finished %.2f on %s"):format(f:result()))
end

section("A task's error keeps its value")
local bad = ex:submit(function() error({code = 42}) end)
print("task error, code " .. bad:exception().code)

section("A deadlock that Python hangs on is an error here")
local solo <close> = futures.ThreadPoolExecutor(1)
local outer = solo:submit(function(pool)
  return pool:submit(function() return "never runs" end):result()
end, solo)
print(tostring(outer:exception()))
