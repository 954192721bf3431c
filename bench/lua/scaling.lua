-- bench/lua/scaling.lua: the driver of `make bench-scaling` (run it through
-- bench/scaling.sh).  CPU-bound tasks on 1, 2, 4, ... cpu_count workers for
-- luafutures' ThreadPoolExecutor and ProcessPoolExecutor and Python's
-- ProcessPoolExecutor; prints the speedup table and writes it to
-- bench/results/scaling.md, with a chart in bench/results/scaling.svg.
--
-- Each measurement is a fresh process (bench/lua/scaling_point.lua or
-- bench/py/scaling.py) that times 2*k tasks on a 1-worker pool and on a
-- k-worker pool of the same kind; runs go round the worker counts and the
-- series in turn, so drift of a shared machine spreads over all of them.
--
-- Environment: LUA (the interpreter for the Lua side; default: the one
-- running this script), PYTHON (default python3), SCALING_REPS (runs per
-- point, default 3), SCALING_TASK_S (seconds one task should take, default
-- 0.2), SCALING_MAX_WORKERS (default cpu_count), SCALING_N_LUA and
-- SCALING_N_PY (fix N instead of calibrating it), SCALING_OUT (the folder
-- for scaling.md and scaling.svg, default bench/results), SCALING_TIMEOUT
-- (seconds per process, default 600; used when `timeout` exists).
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local svgchart = require "svgchart"

local function env(name, default) local v = os.getenv(name); if v == nil or v == "" then return default end; return v end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local LUA = env("LUA", arg[-1] or "lua5.4")
local PYTHON = env("PYTHON", "python3")
local REPS = math.tointeger(tonumber(env("SCALING_REPS", "3"))) or error("SCALING_REPS: a whole number")
local TASK_S = tonumber(env("SCALING_TASK_S", "0.2")) or error("SCALING_TASK_S: a number")
local OUT = env("SCALING_OUT", "bench/results")
local TIMEOUT = math.tointeger(tonumber(env("SCALING_TIMEOUT", "600"))) or 600
local CPUS = futures.cpu_count()
local MAXW = math.tointeger(tonumber(env("SCALING_MAX_WORKERS", tostring(CPUS)))) or CPUS

local function note(fmt, ...) io.stderr:write(string.format(fmt, ...), "\n"); io.stderr:flush() end

local function sh(cmd)  -- first line of a command's output, or nil
  local p = io.popen(cmd .. " 2>/dev/null")
  if not p then return nil end
  local s = p:read("l"); p:close()
  return s
end

local TIMEOUT_PREFIX = ""
if os.execute("command -v timeout >/dev/null 2>&1") then
  TIMEOUT_PREFIX = "timeout " .. TIMEOUT .. " "
end

-- Runs one child; returns its "SC k v ..." line as a table, or nil and why.
local function child(cmd)
  local errf = os.tmpname()
  local p = assert(io.popen(TIMEOUT_PREFIX .. cmd .. " 2>" .. q(errf)))
  local out = p:read("a")
  local ok, _, code = p:close()
  local fh = io.open(errf); local err = fh and fh:read("a") or ""; if fh then fh:close() end
  os.remove(errf)
  local line = out:match("SC [^\n]*")
  if not ok or not line then
    local first = err:match("[^\n]+") or "no output"
    if err ~= "" then io.stderr:write((err:gsub("[^\n]+", "   | %0"))) end
    return nil, string.format("exit %s: %s", tostring(code), first)
  end
  if err ~= "" then io.stderr:write((err:gsub("[^\n]+", "   | %0"))) end
  local r, words = {}, {}
  for w in line:gmatch("%S+") do words[#words + 1] = w end
  if words[2] == "skipped" then return {skipped = words[3] or "skipped"} end
  for i = 2, #words - 1, 2 do r[words[i]] = tonumber(words[i + 1]) or words[i + 1] end
  return r
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function thousands(n)
  local s = tostring(math.tointeger(n) or n)
  repeat local k; s, k = s:gsub("^(%d+)(%d%d%d)", "%1,%2") until k == 0
  return s
end

-- The machine.
local function cpu_model()
  local fh = io.open("/proc/cpuinfo")
  if fh then
    local text = fh:read("a"); fh:close()
    for _, key in ipairs{"model name", "Hardware", "cpu model", "Model", "cpu"} do
      local v = text:match("\n" .. key .. "%s*:%s*([^\n]+)") or text:match("^" .. key .. "%s*:%s*([^\n]+)")
      if v then return (v:gsub("%s+$", "")) end
    end
  end
  return "unknown CPU"
end
local NPROC = tonumber(sh("nproc")) or CPUS
local ARCH = sh("uname -m") or "?"
local MODEL = cpu_model()
local MEM = (function()
  local fh = io.open("/proc/meminfo"); if not fh then return nil end
  local kib = tonumber(fh:read("a"):match("MemTotal:%s*(%d+)")); fh:close()
  return kib and string.format("%.0f GiB", kib / 1048576)
end)()
local DATE = os.date("!%Y-%m-%d %H:%M UTC")
local LUA_VERSION = (sh(q(LUA) .. " -v") or _VERSION):gsub("%s+Copyright.*", "")
local PY_VERSION = sh(q(PYTHON) .. " --version")
local PY_METHOD = PY_VERSION and sh(q(PYTHON) .. " -c 'import multiprocessing as m; print(m.get_start_method())'")

-- Worker counts: 1, 2, 4, ... below the maximum, then the maximum itself.
local KS = {}
do
  local k = 1
  while k < MAXW do KS[#KS + 1] = k; k = k * 2 end
  KS[#KS + 1] = MAXW
end

local SERIES = {
  {id = "lua_thread", label = "luafutures ThreadPoolExecutor", col = "lua thread speedup", side = "lua", kind = "thread"},
  {id = "lua_process", label = "luafutures ProcessPoolExecutor", col = "lua process speedup", side = "lua", kind = "process"},
  {id = "py_process", label = "Python ProcessPoolExecutor", col = "python process speedup", side = "py"},
}
for _, s in ipairs(SERIES) do s.runs = {}; for _, k in ipairs(KS) do s.runs[k] = {} end end

note("bench-scaling: %d CPU(s) (%s), workers %s, %d run(s) per point",
  NPROC, MODEL, table.concat(KS, " "), REPS)
local START = futures.now()

-- N for each side: one task should take about TASK_S seconds.
local N, TASK, FIXED = {}, {}, false
local function calibrate(side, fixed, cmd)
  if fixed then
    N[side] = math.tointeger(tonumber(fixed)) or error("N for " .. side .. ": a whole number")
    FIXED = true
    return true
  end
  local r, why = child(cmd)
  if not r or not r.n then return false, why or "no figure" end
  N[side], TASK[side] = math.tointeger(r.n), r.task_s
  return true
end
local ok, why = calibrate("lua", os.getenv("SCALING_N_LUA"),
  q(LUA) .. " bench/lua/scaling_point.lua calibrate " .. TASK_S)
if not ok then
  note("bench-scaling: the Lua side cannot run (%s); is the module built (make)?", why)
  os.exit(1)
end
if not PY_VERSION then
  for _, s in ipairs(SERIES) do if s.side == "py" then s.na = "n/a (no " .. PYTHON .. ")" end end
else
  ok, why = calibrate("py", os.getenv("SCALING_N_PY"), q(PYTHON) .. " bench/py/scaling.py calibrate " .. TASK_S)
  if not ok then for _, s in ipairs(SERIES) do if s.side == "py" then s.na = "ERROR"; s.why = why end end end
end
note("  N: Lua %s%s, Python %s%s", thousands(N.lua),
  TASK.lua and string.format(" (%.3f s per task)", TASK.lua) or "",
  N.py and thousands(N.py) or "-", TASK.py and string.format(" (%.3f s per task)", TASK.py) or "")

for rep = 1, REPS do
  for _, k in ipairs(KS) do
    local line = {}
    for _, s in ipairs(SERIES) do
      if not s.na then
        local cmd
        if s.side == "lua" then
          cmd = string.format("%s bench/lua/scaling_point.lua run %s %d %d", q(LUA), s.kind, k, N.lua)
        else
          cmd = string.format("%s bench/py/scaling.py run %d %d", q(PYTHON), k, N.py)
        end
        local r, err = child(cmd)
        if r and r.skipped then
          s.na = "n/a"; s.why = r.skipped
        elseif not r or not r.speedup then
          s.na = "ERROR"; s.why = err or "no figure"
          note("  !! %s, %d workers failed: %s", s.label, k, s.why)
        else
          table.insert(s.runs[k], r)
          if r.workers < k then s.short = true end
          line[#line + 1] = string.format("%s %.2fx", s.id, r.speedup)
        end
      end
    end
    note("  run %d/%d, %2d worker(s): %s", rep, REPS, k, table.concat(line, "  "))
  end
end
local ELAPSED = futures.now() - START

-- Medians.
local function med(s, k, key)
  if s.na then return nil end
  local v = {}
  for _, r in ipairs(s.runs[k]) do v[#v + 1] = r[key] end
  return median(v)
end
local function cell(s, k, key, fmt)
  local v = med(s, k, key)
  if v == nil then return s.na or "n/a" end
  return string.format(fmt, v)
end

-- Seconds per task as the 1-worker pools ran them (median over every run).
local function per_task(side)
  local v = {}
  for _, s in ipairs(SERIES) do
    if s.side == side and not s.na then
      for _, k in ipairs(KS) do
        for _, r in ipairs(s.runs[k]) do v[#v + 1] = r.base_s / (2 * k) end
      end
    end
  end
  return median(v)
end
local PER_TASK = {lua = per_task("lua"), py = per_task("py")}
local function task_note(side)
  if PER_TASK[side] then return string.format(", %.3f s per task on a 1-worker pool here", PER_TASK[side]) end
  return ""
end

local rows = {
  "| workers | lua thread speedup | lua process speedup | python process speedup | ideal |",
  "|---:|---:|---:|---:|---:|",
}
for _, k in ipairs(KS) do
  rows[#rows + 1] = string.format("| %d | %s | %s | %s | %d |", k,
    cell(SERIES[1], k, "speedup", "%.2f"), cell(SERIES[2], k, "speedup", "%.2f"),
    cell(SERIES[3], k, "speedup", "%.2f"), k)
end
local TABLE = table.concat(rows, "\n")

local trows = {
  "| workers | tasks | lua thread 1 worker / k, s | lua process 1 worker / k, s | python process 1 worker / k, s |",
  "|---:|---:|---:|---:|---:|",
}
for _, k in ipairs(KS) do
  local c = {}
  for i, s in ipairs(SERIES) do
    local b, p = med(s, k, "base_s"), med(s, k, "par_s")
    c[i] = b and string.format("%.3f / %.3f", b, p) or (s.na or "n/a")
  end
  trows[#trows + 1] = string.format("| %d | %d | %s | %s | %s |", k, 2 * k, c[1], c[2], c[3])
end

local MACHINE = string.format("nproc %d, %s (%s)%s", NPROC, MODEL, ARCH, MEM and (", RAM " .. MEM) or "")
local notes = {}
for _, s in ipairs(SERIES) do
  if s.na then
    notes[#notes + 1] = string.format("- %s: %s%s.", s.label, s.na,
      s.why == "no-process-pool" and " (this build of the module has no `ProcessPoolExecutor`)"
      or s.why and (" (" .. s.why .. ")") or "")
  elseif s.short then
    notes[#notes + 1] = string.format("- %s: at some point fewer workers than asked answered the warm-up; the figure may be low.", s.label)
  end
end
local load = (function()
  local fh = io.open("/proc/loadavg"); if not fh then return "?" end
  local s = fh:read("l"); fh:close(); return s:match("^(%S+ %S+ %S+)") or "?"
end)()

local md = {
  "# luafutures scaling: CPU-bound tasks on 1 to " .. MAXW .. " workers",
  "",
  "Reproduce with `make bench-scaling` (or `bash bench/scaling.sh`; `LUA=` and",
  "`PYTHON=` name the interpreters). Generated by `bench/lua/scaling.lua`;",
  "the chart is [scaling.svg](scaling.svg).",
  "",
  "- machine: " .. MACHINE .. "; load average at the end " .. load,
  "- date: " .. DATE .. "; " .. string.format("%.0f s in all", ELAPSED),
  "- Lua: " .. LUA_VERSION .. "; Python: " .. (PY_VERSION or "none") ..
    (PY_METHOD and (" (ProcessPoolExecutor start method: " .. PY_METHOD .. ")") or ""),
  "- luafutures' process pool: its default start method (spawn)",
  string.format("- task: the sum of `i*i` for i = 1 .. N in one loop. Lua: integer arithmetic (it wraps past 2^63), N = %s%s.",
    thousands(N.lua), task_note("lua")),
  string.format("  Python: the same loop with a smaller N = %s%s. Python's integers do not wrap and each of its steps costs several times Lua's, so each side's N is %s.",
    N.py and thousands(N.py) or "n/a", task_note("py"),
    FIXED and "set by `SCALING_N_LUA` / `SCALING_N_PY`"
    or string.format("calibrated on this machine for a task of about %.2g s", TASK_S)),
  "- each point: 2 x workers tasks, so every worker gets the same work. Speedup = seconds for those tasks on a 1-worker pool of the same kind / seconds on the k-worker pool. Pools are created and every worker has run a task before the clock starts; tasks are submitted at once, then every result is read. Median of " .. REPS .. " runs, each a fresh process.",
}
for _, n in ipairs(notes) do md[#md + 1] = n end
md[#md + 1] = ""
md[#md + 1] = TABLE
md[#md + 1] = ""
md[#md + 1] = "Seconds (median), 1-worker pool / k-worker pool:"
md[#md + 1] = ""
md[#md + 1] = table.concat(trows, "\n")
md[#md + 1] = ""

local series, ymax = {}, MAXW
for _, s in ipairs(SERIES) do
  local pts = {}
  for _, k in ipairs(KS) do
    local v = med(s, k, "speedup")
    if v then pts[#pts + 1] = {k, v}; ymax = math.max(ymax, v) end
  end
  series[#series + 1] = {name = s.label .. (s.na and (" (" .. s.na .. ")") or ""), points = pts}
end
local svg = svgchart.line{
  title = string.format("luafutures scaling: speedup of 2 x k CPU-bound tasks on k workers"),
  subtitle = string.format("nproc %d, %s (%s), %s; median of %d runs", NPROC, MODEL, ARCH, DATE, REPS),
  xlabel = "workers (k)", ylabel = "speedup over 1 worker",
  xmax = MAXW, ymax = ymax, diagonal = "ideal (y = x)", series = series,
}

local function write(path, text)
  local fh = assert(io.open(path, "w"))
  fh:write(text); fh:close()
end
os.execute("mkdir -p " .. q(OUT))
write(OUT .. "/scaling.md", table.concat(md, "\n"))
write(OUT .. "/scaling.svg", svg)

print()
print("## luafutures scaling (" .. MACHINE .. ", " .. DATE .. ")")
print()
print(TABLE)
print()
for _, n in ipairs(notes) do print(n) end
print(string.format("written: %s/scaling.md, %s/scaling.svg (%.0f s)", OUT, OUT, ELAPSED))
