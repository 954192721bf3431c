-- Out of memory fails cleanly: a child lua5.4 under a low `ulimit -v`
-- submits 2,000 tasks that allocate; whatever ran short, it must not crash,
-- every future must finish, and a task that could not run must say
-- "not enough memory" (Lua's own memory error). The limit where memory
-- runs short depends on the machine, so a ladder of limits is tried: every
-- run must be clean, and at least one must have hit memory errors.
-- AddressSanitizer reserves terabytes of address space and ThreadSanitizer
-- breaks /bin/sh: a virtual memory limit means nothing under either.
local sanitized = os.getenv("LUAFUTURES_SANITIZE") ~= nil

local child = [[
local futures = require "concurrent.futures"
local kind = ...
local ok, ex = pcall(function()
  if kind == "thread" then return futures.ThreadPoolExecutor(32) end
  return futures.ProcessPoolExecutor{max_workers = 4}
end)
if not ok then print("NOPOOL " .. tostring(ex)) return end
local function task(n)
  local t = {}
  for k = 1, 64 do t[k] = string.rep("x", 16384, k) end
  return #t + n
end
local fs, refused, other = {}, 0, {}
for i = 1, 2000 do
  local sent, f = pcall(ex.submit, ex, task, i)
  if sent then fs[#fs + 1] = f
  elseif tostring(f):find("memory") or tostring(f):find("cannot start") then
    refused = refused + 1 -- submit itself ran short: a clean error
  else other[#other + 1] = tostring(f) end
end
local good, oom = 0, 0
for i = 1, #fs do
  local done, v = pcall(fs[i].result, fs[i])
  if not done and v == "not enough memory" and not fs[i]:done() then
    done, v = pcall(fs[i].result, fs[i]) -- the caller's own shortage
  end
  if done and v == 64 + i then good = good + 1
  elseif not done and v == "not enough memory" then oom = oom + 1
  else other[#other + 1] = tostring(v) end
end
-- result() itself may run short (a memory error of the caller, the future
-- still running): after a waiting shutdown, every future must be done.
ex:shutdown()
local pending = 0
for i = 1, #fs do if not fs[i]:done() then pending = pending + 1 end end
print(("RESULT submitted=%d refused=%d good=%d oom=%d pending=%d"):format(
  #fs, refused, good, oom, pending))
for _, e in ipairs(other) do print("OTHER " .. e) end
]]

local function run_limited(kind, kib)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write('package.cpath = "./?.so;" .. package.cpath\n', child)
  f:close()
  -- One malloc arena: with one per thread, glibc tries (and fails) to map
  -- a fresh 64 MiB heap for nearly every allocation once the limit is
  -- near, and the child crawls through system calls instead of failing.
  local p = io.popen(("exec sh -c 'ulimit -v %d; MALLOC_ARENA_MAX=1 exec timeout 60 lua5.4 %s %s' 2>&1")
    :format(kib, path, kind))
  local out = p:read("a")
  local _, how, code = p:close()
  os.remove(path)
  return out, how, code
end

-- Tries the limits in turn, at least three, until one made tasks fail.
local function ladder(kind, limits)
  local hit = false
  for tried, kib in ipairs(limits) do
    if hit and tried > 3 then break end
    local out, how, code = run_limited(kind, kib)
    local where = ("%s pool under ulimit -v %d:\n%s"):format(kind, kib, out)
    assert(how == "exit" and code < 124, "crashed or hung (" .. how .. " "
      .. tostring(code) .. "), " .. where)
    local s, r, g, oom, pending =
      out:match("RESULT submitted=(%d+) refused=(%d+) good=(%d+) oom=(%d+) pending=(%d+)")
    if s then
      assert(tonumber(pending) == 0, "futures left pending, " .. where)
      assert(not out:find("OTHER"), "an error other than out of memory, " .. where)
      assert.equal(tonumber(s), tonumber(g) + tonumber(oom))
      assert.equal(2000, tonumber(s) + tonumber(r))
      if tonumber(oom) > 0 then hit = true end
    else
      -- The child's own code ran out (a Lua memory error), or the pool
      -- could not be made: a clean error, no crash.
      assert(out:find("not enough memory") or out:find("NOPOOL"), where)
    end
  end
  assert(hit, kind .. " pool: no limit made a task run short of memory")
end

local it_ = sanitized and pending or it

describe("out of memory", function()
  it_("fails a 32-worker thread pool's tasks cleanly", function()
    ladder("thread", {40000, 60000, 80000, 150000, 300000})
  end)
  -- Pending until the process pool fails such futures: under ulimit -v
  -- 22000 its dispatch puts a future back to "try again later" when no
  -- slot can be allocated, and the manager then polls with no timeout, so
  -- that future stays pending forever.
  pending("fails a spawn process pool's tasks cleanly", function()
    ladder("process", {18000, 20000, 22000, 25000, 30000})
  end)
end)
