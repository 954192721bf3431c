-- M1: memory.
-- pending: peak RSS (VmHWM) with N = 100,000 futures pending on a
--          ThreadPoolExecutor(1) whose only worker waits on a gate future,
--          above the RSS of the bare interpreter (read before the require).
-- thread:  RSS per idle thread worker: start 8 workers (8 overlapping
--          sleeping tasks), let them go idle, (RSS after - before) / 8.
-- spawn:   RSS and PSS of each idle worker of ProcessPoolExecutor(2)
--          (spawn), read from /proc/PID/status and /proc/PID/smaps_rollup.
-- Usage: lua5.4 bench/lua/m1.lua pending|thread|spawn [N=100000]
package.path = "./bench/lua/?.lua;" .. package.path
local B = require "benchlib"
local BARE_KIB = B.status_kib("VmRSS")
package.cpath = "./?.so;" .. package.cpath
local futures = require "concurrent.futures"

local mode = arg[1]

local function inc(x) return x + 1 end

if mode == "pending" then
  local N = math.tointeger(tonumber(arg[2])) or 100000
  local ex <close> = futures.ThreadPoolExecutor(1)
  ex:submit(inc, 0):result()
  local gate = futures.Future()
  local blocker = ex:submit(function(g) g:result() end, gate)
  local fs = {}
  for i = 1, N do fs[i] = ex:submit(inc, i) end
  local peak = B.status_kib("VmHWM")
  assert(not fs[N]:done(), "the gate did not hold the worker")
  gate:set_result(true)
  blocker:result()
  local total = 0
  for i = 1, N do total = total + fs[i]:result() end
  assert(total == N * (N + 1) // 2 + N, total)
  B.emit("M1", string.format("pending_mib %.2f", (peak - BARE_KIB) / 1024))
elseif mode == "thread" then
  local K = 8
  local before = B.status_kib("VmRSS")
  local ex <close> = futures.ThreadPoolExecutor(K)
  local fs, names, count = {}, {}, 0
  for k = 1, K do
    fs[k] = ex:submit(function(s)
      local fu = require "concurrent.futures"
      fu.sleep(s)
      return fu.thread_name()
    end, 0.05)
  end
  for k = 1, K do
    local name = fs[k]:result()
    if not names[name] then names[name] = true; count = count + 1 end
  end
  local after = B.status_kib("VmRSS")
  assert(count == K, count .. " workers started, expected " .. K)
  B.emit("M1", string.format("thread_worker_kib %.1f", (after - before) / K))
elseif mode == "spawn" then
  B.need_process_pool(futures, "M1")
  local ex <close> = futures.ProcessPoolExecutor(2)
  local fs = {}
  for k = 1, 2 do
    fs[k] = ex:submit(function(s)
      local fu = require "concurrent.futures"
      fu.sleep(s)
      return fu.getpid()
    end, 0.3)
  end
  local p1, p2 = fs[1]:result(), fs[2]:result()
  assert(p1 ~= p2, "one worker ran both tasks")
  local rss = (B.status_kib("VmRSS", p1) + B.status_kib("VmRSS", p2)) / 2
  local pss = (B.pss_kib(p1) + B.pss_kib(p2)) / 2
  B.emit("M1", string.format("process_worker_rss_kib %.0f process_worker_pss_kib %.0f", rss, pss))
else
  error("usage: m1.lua pending|thread|spawn [N]")
end
