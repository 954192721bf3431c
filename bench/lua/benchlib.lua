-- Helpers shared by the bench scripts: statistics, /proc readers and the
-- one-line output format "<ID> <key> <value> ...".  Loaded with
-- package.path = "./bench/lua/?.lua;" .. package.path from the repo root.
local M = {}

-- A field of /proc/PID/status in KiB ("VmRSS", "VmHWM").
function M.status_kib(field, pid)
  local fh = assert(io.open("/proc/" .. (pid or "self") .. "/status"))
  for line in fh:lines() do
    local v = line:match("^" .. field .. ":%s+(%d+)")
    if v then fh:close(); return tonumber(v) end
  end
  fh:close()
  error("no " .. field .. " in /proc/" .. (pid or "self") .. "/status")
end

-- Proportional set size of a process in KiB: its shared pages are split
-- between the processes that map them.
function M.pss_kib(pid)
  local fh = assert(io.open("/proc/" .. pid .. "/smaps_rollup"))
  for line in fh:lines() do
    local v = line:match("^Pss:%s+(%d+)")
    if v then fh:close(); return tonumber(v) end
  end
  fh:close()
  error("no Pss in /proc/" .. pid .. "/smaps_rollup")
end

-- The q-quantile of a sorted array, nearest rank (q = 0.5 is the median).
function M.quantile(sorted, q)
  local k = math.ceil(q * #sorted)
  if k < 1 then k = 1 end
  return sorted[k]
end

-- The main thread's CPU time so far in ns (Linux: the first field of
-- /proc/<pid>/task/<pid>/schedstat, time on a CPU), as getrusage's
-- RUSAGE_THREAD would give it from that thread.
function M.main_cpu_ns()
  local fh = assert(io.open("/proc/self/stat"))
  local pid = fh:read("n")
  fh:close()
  fh = assert(io.open("/proc/self/task/" .. pid .. "/schedstat"))
  local ns = fh:read("n")
  fh:close()
  return ns
end

function M.emit(id, ...)
  print(id .. " " .. table.concat({...}, " "))
  io.stdout:flush()
end

-- Prints the skip line and exits when the module has no process pool.
function M.need_process_pool(futures, id)
  if futures.ProcessPoolExecutor == nil then
    M.emit(id, "skipped", "no-process-pool")
    os.exit(0)
  end
end

-- A process pool of 2 with the given start method, or nil plus the error
-- when the module refuses that method (reported on stderr by the caller).
function M.process_pool(futures, start_method)
  if futures.ProcessPoolExecutor == nil then return nil, "no ProcessPoolExecutor" end
  if start_method == nil then
    return pcall(futures.ProcessPoolExecutor, 2)
  end
  return pcall(futures.ProcessPoolExecutor, {max_workers = 2, start_method = start_method})
end

return M
