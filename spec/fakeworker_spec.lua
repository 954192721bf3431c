-- The process pool against a worker that breaks the protocol on purpose
-- (runtime/tests/fake_worker.c, built by make test as fake-<mode>): every
-- violation is that worker's death, a BrokenProcessPool naming the reason,
-- with no future left pending and the pool's descriptors and children
-- released.
local support = require "support"
local futures = support.futures

local DIR = os.getenv("LUAFUTURES_FAKE_DIR") or "build/fake"

local function fake(mode)
  local path = DIR .. "/fake-" .. mode
  assert(io.open(path), "no fake worker at " .. path .. " (make test builds it)"):close()
  os.remove(path .. ".pids")
  os.remove(path .. ".gate")
  return path
end

local function pids(path)
  local t = {}
  local f = io.open(path .. ".pids")
  if f then
    for line in f:lines() do t[#t + 1] = tonumber(line) end
    f:close()
  end
  return t
end

-- The state letter of a process (R, S, Z...), or nil once it is reaped.
local function pstate(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s:match("^%d+ %b() (%a)")
end

local fds = support.fds

local function broken(err) return futures.BrokenProcessPool:is(err) end

describe("a worker that breaks the protocol", function()
  local cases = {
    {"oversize", "broke the protocol.*%(worker %d+ sent a message above the size limit %(LUAFUTURES_MAX_MESSAGE%)%)$"},
    {"truncated", "broke the protocol.*%(worker %d+ sent a truncated message%)$"},
    {"unknown_id", "broke the protocol.*%(worker %d+ answered task %d+, which it was not given%)$"},
    {"bye_holding", "broke the protocol.*%(worker %d+ said goodbye holding 1 unanswered task%)$"},
    {"bye_lying", "broke the protocol.*%(%d tasks? taken by workers that left without answering%)$"},
    {"exit99", "terminated abruptly.*%(worker %d+ exited with status 99%)$"},
    {"signal", "terminated abruptly.*%(worker %d+ was killed by signal 9%)$"},
  }
  for _, case in ipairs(cases) do
    local mode, reason = case[1], case[2]
    it(mode .. ": breaks the pool naming why; nothing pending, nothing left open", function()
      local before = fds()
      local path = fake(mode)
      local ex = futures.ProcessPoolExecutor{worker = path, max_workers = 1}
      local first = ex:submit(function() return 1 end)
      -- A worker that breaks the protocol at once may break the pool
      -- before this second submit (a descheduled caller): then the submit
      -- itself raises the pool's error.
      local submitted, queued = pcall(ex.submit, ex, function() return 2 end)
      local err = support.error_of(first.result, first, 20)
      assert.is_true(broken(err), tostring(err))
      assert.matches("^BrokenProcessPool: .*" .. reason, tostring(err))
      assert.is_true(broken(submitted and queued:exception(20) or queued))
      assert.is_true(broken(support.error_of(ex.submit, ex, print)))
      ex:shutdown()
      assert.matches("workers=0/1 state=broken", tostring(ex))
      assert.equal(before, fds())
      local started = pids(path)
      assert.is_true(#started >= 1)
      for _, pid in ipairs(started) do assert.is_nil(pstate(pid)) end
    end)
  end

  it("linger: a worker alive after its goodbye freezes neither results nor tostring", function()
    local path = fake("linger")
    local ex = futures.ProcessPoolExecutor{worker = path, max_workers = 1, max_tasks_per_child = 1}
    local first = ex:submit(function() return 1 end)
    pcall(first.result, first, 5) -- the fake answers with no values
    assert.is_true(first:done())
    -- The first worker said goodbye and lingers; only a manager that still
    -- runs sees that goodbye and starts the worker that answers this one.
    local second = ex:submit(function() return 2 end)
    local ok, err = pcall(second.result, second, 5)
    assert.is_false(futures.TimeoutError:is(err), tostring(err))
    assert.is_true(second:done() and ok ~= nil)
    assert.matches("state=running", tostring(ex))
    local started = pids(path)
    assert.equal(2, #started)
    local st = pstate(started[1])
    assert.is_truthy(st and st ~= "Z", "the first worker lingers")
    assert(io.open(path .. ".gate", "w")):close()
    ex:shutdown()
    for _, pid in ipairs(started) do assert.is_nil(pstate(pid)) end
    os.remove(path .. ".gate")
  end)

  it("cannot start a worker process: the error says why", function()
    if not support.children_ok then pending("runs commands: not under ThreadSanitizer") end
    local out, err, status = support.run_script([[
      local futures = require("concurrent.futures")
      local ex = futures.ProcessPoolExecutor(1)
      local files = {}
      while true do -- every descriptor but one taken
        local f = io.open("/dev/null")
        if not f then break end
        files[#files + 1] = f
      end
      files[#files]:close()
      local ok, e = pcall(ex.submit, ex, print)
      io.write(tostring(futures.RuntimeError:is(e)), " ", tostring(e))
    ]], "ulimit -n 64;")
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("true RuntimeError: cannot start a worker process (the task queue: Too many open files)", out)
  end)

  -- The decoder reads K, M and G suffixes too: both limits are one setting.
  for _, limit in ipairs{"65536", "64K"} do
    it("LUAFUTURES_MAX_MESSAGE=" .. limit .. " bounds what a worker may send", function()
      if not support.children_ok then pending("runs commands: not under ThreadSanitizer") end
      local out, err, status = support.run_script([[
        local futures = require("concurrent.futures")
        local ex <close> = futures.ProcessPoolExecutor(1)
        local small = ex:submit(function() return "ok" end):result()
        local f = ex:submit(function() return string.rep("x", 1000000) end)
        local ok, e = pcall(f.result, f)
        io.write(small, " ", tostring(futures.BrokenProcessPool:is(e)), " ", tostring(e))
      ]], "LUAFUTURES_MAX_MESSAGE=" .. limit)
      assert.equal("", err)
      assert.equal(0, status)
      assert.matches("^ok true BrokenProcessPool: .*above the size limit", out)
    end)
  end
end)

-- The run stamp at the end of a result (outcome.c) is a worker's word too:
-- times that are not a clock reading are no times, so the task is drawn as
-- an instant in the main thread's row, as an untimed one is.
describe("a worker's run stamp", function()
  it("is believed only when its times are a clock reading", function()
    if not support.children_ok then pending("runs commands: not under ThreadSanitizer") end
    local path = fake("file")
    local payload = os.tmpname()
    local out, err, status = support.run_script(([[
      local futures = require("concurrent.futures")
      local cjson = require("cjson")
      local worker, payload = %q, %q
      -- One result, the integer i, then the stamp: name, start, end, pid,
      -- tid, the name's length, timed.
      local function answer(i, start, stop)
        local f = assert(io.open(payload, "wb"))
        f:write(string.pack("<I4BI4Bi4", 1, 1, 1, 4, i), "x",
                string.pack("<ddi4i4BB", start, stop, 424242, 424243, 1, 1))
        f:close()
      end
      local cases = {{"now", "now"}, {1e300, 1e300}, {math.huge, math.huge},
                     {-math.huge, -math.huge}, {0/0, 0/0}, {-1e300, -1e300},
                     {-1, -1}}
      local trace = os.tmpname()
      local before = futures.now()
      futures.trace(trace)
      local ex = futures.ProcessPoolExecutor{worker = worker, max_workers = 1}
      for i, c in ipairs(cases) do
        if c[1] == "now" then c = {futures.now(), futures.now()} end
        answer(i, c[1], c[2])
        assert(ex:submit(function() end):result() == i)
      end
      ex:shutdown()
      futures.trace(false)
      local span = (futures.now() - before) * 1e6
      local f = assert(io.open(trace))
      local doc = cjson.decode(f:read("a"))
      f:close()
      os.remove(trace)
      for _, e in ipairs(doc.traceEvents) do
        if e.cat == "task" then
          io.write(e.args.id, " ", e.pid == 424242 and "stamp" or
                   e.pid == futures.getpid() and "main" or "?", " ",
                   tostring(e.ts >= 0 and e.ts <= span and e.dur >= 0 and
                            e.dur <= span), "\n")
        end
      end
    ]]):format(path, payload), "FAKE_WORKER_FILE=" .. payload .. " FAKE_WORKER_FLAGS=2")
    os.remove(payload)
    assert.equal("", err)
    assert.equal(0, status)
    local lines = {}
    for id, row, sane in out:gmatch("(%d+) (%S+) (%S+)\n") do
      lines[#lines + 1] = row .. " " .. sane
    end
    assert.same({"stamp true", "main true", "main true", "main true",
                 "main true", "main true", "main true"}, lines, out)
  end)
end)
