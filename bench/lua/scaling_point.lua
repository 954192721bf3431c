-- SC: the Lua side of `make bench-scaling` (bench/lua/scaling.lua runs it).
-- The task is CPU-bound: the sum of i*i for i = 1 .. N in integer
-- arithmetic (it wraps past 2^63, as Lua integers do).
--
-- Usage, from the repository root:
--   $LUA bench/lua/scaling_point.lua calibrate SECONDS
--       prints "SC n N task_s T": the N for which one task takes about
--       SECONDS in this interpreter, and the time it took
--   $LUA bench/lua/scaling_point.lua run thread|process WORKERS N
--       2*WORKERS tasks on a 1-worker pool, then on a WORKERS-worker pool
--       of that kind (each pool started and every worker warmed first);
--       prints "SC base_s B par_s P speedup B/P workers K", or
--       "SC skipped no-process-pool" when the module has no process pool
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local function work(n)
  local s = 0
  for i = 1, n do s = s + i * i end
  return s
end

local function calibrate(target)
  local n, t = 1000000, 0
  repeat  -- grow until one timing is long enough to trust
    local t0 = futures.now(); work(n); t = futures.now() - t0
    if t < target / 4 then n = n * 4 end
  until t >= target / 4
  for _ = 1, 2 do  -- rescale twice, taking the fastest of three timings
    n = math.max(1, math.floor(n * target / t + 0.5))
    t = math.huge
    for _ = 1, 3 do
      local t0 = futures.now(); work(n); t = math.min(t, futures.now() - t0)
    end
  end
  B.emit("SC", string.format("n %d task_s %.4f", n, t))
end

-- Starts every worker of ex: rounds of k tasks that sleep, until k distinct
-- workers answered (a worker that finishes early could take a second task).
-- Returns how many distinct workers answered in the last round.
local function start_all(ex, k)
  local pause, seen = 0.05, 0
  for _ = 1, 6 do
    local fs, ids = {}, {}
    for i = 1, k do
      fs[i] = ex:submit(function(s)
        futures.sleep(s)
        return futures.getpid() .. "/" .. futures.thread_name()
      end, pause)
    end
    seen = 0
    for i = 1, k do
      local id = fs[i]:result()
      if not ids[id] then ids[id] = true; seen = seen + 1 end
    end
    if seen == k then break end
    pause = pause * 2
  end
  return seen
end

-- Seconds for count tasks of size n on ex, submitted at once; the results.
local function timed(ex, count, n)
  local t0 = futures.now()
  local fs, res = {}, {}
  for i = 1, count do fs[i] = ex:submit(work, n) end
  for i = 1, count do res[i] = fs[i]:result() end
  return futures.now() - t0, res
end

local function run(kind, k, n)
  local make
  if kind == "thread" then
    make = futures.ThreadPoolExecutor
  elseif kind == "process" then
    if futures.ProcessPoolExecutor == nil then
      B.emit("SC", "skipped no-process-pool")
      return
    end
    make = futures.ProcessPoolExecutor
  else
    error("unknown pool kind '" .. tostring(kind) .. "' (thread or process)")
  end
  local count = 2 * k
  -- One pool at a time: the 1-worker baseline, then the k-worker pool.
  local ex1 = make(1)
  start_all(ex1, 1)
  local base, expect = timed(ex1, count, n)
  ex1:shutdown(true)
  for i = 2, count do assert(expect[i] == expect[1], "results differ") end

  local exk = make(k)
  local started = start_all(exk, k)
  local par, res = timed(exk, count, n)
  exk:shutdown(true)
  for i = 1, count do assert(res[i] == expect[1], "results differ") end

  B.emit("SC", string.format("base_s %.4f par_s %.4f speedup %.4f workers %d",
    base, par, base / par, started))
end

local mode = arg[1]
if mode == "calibrate" then
  calibrate(assert(tonumber(arg[2]), "calibrate SECONDS"))
elseif mode == "run" then
  run(arg[2], assert(math.tointeger(tonumber(arg[3])), "run KIND WORKERS N"),
      assert(math.tointeger(tonumber(arg[4])), "run KIND WORKERS N"))
else
  io.stderr:write("usage: scaling_point.lua calibrate SECONDS | run thread|process WORKERS N\n")
  os.exit(2)
end
