-- W6: the documentation's is_prime example (the six numbers of the
-- ProcessPoolExecutor example), sequential vs ex:map on
-- ProcessPoolExecutor(2) (spawn, the default; fork too when accepted) and
-- on ThreadPoolExecutor(2).  Pool creation and shutdown are counted.
-- Usage: lua5.4 bench/lua/w6.lua
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local PRIMES = {
  112272535095293,
  112582705942171,
  112272535095293,
  115280095190773,
  115797848077099,
  1099726899285419}
local EXPECT = {true, true, true, true, true, false}

local function is_prime(n)
  if n < 2 then return false end
  if n == 2 then return true end
  if n % 2 == 0 then return false end
  local sqrt_n = math.floor(math.sqrt(n))
  for i = 3, sqrt_n, 2 do
    if n % i == 0 then return false end
  end
  return true
end

local function check(res)
  for k = 1, #PRIMES do assert(res[k] == EXPECT[k], PRIMES[k]) end
end

local t0 = futures.now()
local res = {}
for k, n in ipairs(PRIMES) do res[k] = is_prime(n) end
local seq = futures.now() - t0
check(res)

local function timed(make)
  local t = futures.now()
  local ex = make()
  local r = ex:map(is_prime, PRIMES):collect()
  ex:shutdown(true)
  local dt = futures.now() - t
  check(r)
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
    io.stderr:write("W6 ", method, ": ", tostring(ex), "\n")
  end
end
B.emit("W6", table.concat(out, " "))
