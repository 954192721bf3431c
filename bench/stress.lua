-- stress.lua -- a bounded run of many tasks with random cancels, timeouts,
-- callbacks and errors on a thread pool, spawn and fork process pools, and
-- kill -9 of process workers; then it checks that every future's outcome is
-- accounted for and that fds, threads and children are back where they
-- started. Run by `make stress` (bin/luafutures bench/stress.lua).
--
--   STRESS_TASKS  how many tasks in all (default 1,000,000)
--   STRESS_SEED   the random seed (default: the clock; printed either way)
local futures = require "concurrent.futures"

local total = math.tointeger(tonumber(os.getenv("STRESS_TASKS") or "1000000"))
assert(total and total > 0, "STRESS_TASKS must be a positive integer")
local seed = math.tointeger(tonumber(os.getenv("STRESS_SEED") or "")) or os.time()
math.randomseed(seed)
local pid = futures.getpid()

-- ---- what the process holds --------------------------------------------------

-- A command's output lines, counted through a file: os.execute adds no fd
-- to this process (io.popen's pipe would be listed in /proc/PID/fd, or not,
-- depending on when the listing runs), and its shell counts as the same
-- one child at the start and at the end.
local function lines_of(cmd)
  local tmp = os.tmpname()
  os.execute(cmd .. " > " .. tmp)
  local n = 0
  for _ in io.lines(tmp) do n = n + 1 end
  os.remove(tmp)
  return n
end
local function fds() return lines_of("ls /proc/" .. pid .. "/fd") end
local function children()
  return lines_of("cat /proc/" .. pid .. "/task/*/children | tr ' ' '\\n' | grep .")
end
local function threads()
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local n = tonumber(f:read("a"):match("\nThreads:%s*(%d+)"))
  f:close()
  return n
end
-- A warm-up pool first: what starts once per process on first use (a
-- sanitizer's background thread) is then already in the count.
do
  local ex <close> = futures.ThreadPoolExecutor(1)
  ex:submit(print, "stress: warming up"):result()
end
local before = {fds = fds(), threads = threads(), children = children()}

-- ---- tasks ------------------------------------------------------------------

local RETURN, RAISE, NAP = 0, 1, 2
local function task(i, mode)
  if mode == 1 then error({code = i}) end
  if mode == 2 then futures.sleep(0.0002) end -- something a cancel can miss
  return i * 2
end

local count = {returned = 0, raised = 0, cancelled = 0, broken = 0,
               refused = 0, lost = 0, pending = 0, wrong = 0,
               timeouts = 0, callbacks = 0, kills = 0}
local per_kind = {thread = 0, spawn = 0, fork = 0}
local problems = {}
local function problem(msg)
  count.wrong = count.wrong + 1
  if #problems < 10 then problems[#problems + 1] = msg end
end

-- One round on executor `ex`: n tasks, then every outcome accounted for.
-- `kill` makes it kill -9 one of the pool's workers half way.
local function round(ex, kind, n, kill)
  local fs, modes, cancelled, called = {}, {}, {}, {}
  local submitted = 0
  local function on_done(f) called[f] = (called[f] or 0) + 1 end
  for i = 1, n do
    if kill and i == n // 2 then
      local ok, wpid = pcall(function()
        return ex:submit(futures.getpid):result()
      end)
      if ok then
        os.execute("kill -9 " .. math.tointeger(wpid))
        count.kills = count.kills + 1
      end
    end
    local r = math.random(1000)
    local mode = r <= 50 and RAISE or r <= 52 and NAP or RETURN
    local ok, f = pcall(ex.submit, ex, task, i, mode)
    if not ok then
      if kill and futures.BrokenProcessPool:is(f) then
        count.refused = count.refused + 1
      else
        problem("submit raised " .. tostring(f))
      end
    else
      submitted = submitted + 1
      fs[i], modes[i] = f, mode
      r = math.random(1000)
      if r <= 30 then
        cancelled[i] = f:cancel()
      elseif r <= 40 then
        called[f] = 0 -- first: a done future runs it at once
        f:add_done_callback(on_done)
      elseif r <= 50 then
        local done, err = pcall(f.result, f, 0)
        if not done and futures.TimeoutError:is(err) then
          count.timeouts = count.timeouts + 1
        end
      end
    end
    if i % 1000 == 0 then
      local _, not_done = futures.wait(fs, 0, futures.FIRST_COMPLETED)
      if #not_done > 0 then count.timeouts = count.timeouts + 1 end
    end
  end
  for i = 1, n do
    local f = fs[i]
    if f then
      local ok, v = pcall(f.result, f)
      if f:cancelled() then
        if cancelled[i] then count.cancelled = count.cancelled + 1
        else problem("future " .. i .. " cancelled by no one") end
      elseif ok and modes[i] ~= RAISE and v == i * 2 then
        count.returned = count.returned + 1
      elseif not ok and modes[i] == RAISE and type(v) == "table" and v.code == i then
        count.raised = count.raised + 1
      elseif not ok and kill and futures.BrokenProcessPool:is(v) then
        count.broken = count.broken + 1
      else
        problem(("future %d (%s pool) gave %s"):format(i, kind, tostring(v)))
      end
    end
  end
  ex:shutdown(true)
  futures.poll()
  local accounted = 0
  for i = 1, n do
    local f = fs[i]
    if f then
      accounted = accounted + 1
      if not f:done() then count.pending = count.pending + 1 end
    end
  end
  count.lost = count.lost + (submitted - accounted)
  for f, k in pairs(called) do
    if k ~= 1 then
      problem(("a callback ran %d times (%s pool, %s)"):format(k, kind, tostring(f)))
    end
    count.callbacks = count.callbacks + k
  end
  per_kind[kind] = per_kind[kind] + n
end

-- ---- the run ----------------------------------------------------------------

-- At least 20 rounds, so that a small run has every kind: of each 10, one
-- spawn and one fork round, smaller (a process task costs far more than a
-- thread task); one process round in two kills a worker.
local ROUND = math.max(10, math.min(10000, total // 20))
local left, r = total, 0
while left > 0 do
  r = r + 1
  local kind = r % 10 == 4 and "spawn" or r % 10 == 9 and "fork" or "thread"
  local n = math.min(left, kind == "thread" and ROUND or math.max(1, ROUND // 5))
  local ex
  if kind == "thread" then
    ex = futures.ThreadPoolExecutor(4)
  else
    ex = futures.ProcessPoolExecutor{max_workers = 2, start_method = kind}
  end
  round(ex, kind, n, kind ~= "thread" and r % 20 >= 10)
  left = left - n
end
collectgarbage()
collectgarbage()

local after = {fds = fds(), threads = threads(), children = children()}
print(("stress: %d tasks, seed %d: thread %d, spawn %d, fork %d"):format(
  total, seed, per_kind.thread, per_kind.spawn, per_kind.fork))
print(("  outcomes: returned %d, raised %d, cancelled %d, broken %d, refused %d")
  :format(count.returned, count.raised, count.cancelled, count.broken, count.refused))
print(("  nothing pending: %d pending; nothing lost: %d lost, %d wrong")
  :format(count.pending, count.lost, count.wrong))
print(("  timeouts seen %d, callbacks %d (each ran once), workers killed %d")
  :format(count.timeouts, count.callbacks, count.kills))
print(("  fds %d -> %d, threads %d -> %d, children %d -> %d"):format(
  before.fds, after.fds, before.threads, after.threads,
  before.children, after.children))
for _, p in ipairs(problems) do print("  problem: " .. p) end
local accounted = count.returned + count.raised + count.cancelled
  + count.broken + count.refused
local ok = count.pending == 0 and count.lost == 0 and count.wrong == 0
  and accounted == total and after.fds == before.fds
  and after.threads == before.threads and after.children == before.children
print(ok and "stress: ok" or "stress: FAILED")
os.exit(ok and 0 or 1)
