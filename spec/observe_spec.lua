-- Seeing what the pool does: futures.trace (Chrome trace JSON and the SVG
-- timeline), futures.progress, ex:stats() and tostring's worker. Traces are
-- written by child scripts (the trace is process-wide) and read back with
-- cjson; every task is released by the test, none by a clock.
local support = require "spec.support"
local futures = support.futures
local cjson = require "cjson"

local function slurp(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The script every trace spec runs: tasks on a thread pool, a spawn and a
-- fork process pool, one that raises and one cancelled while queued. It
-- writes, for each task, when it was submitted and when its result()
-- returned (futures.now(), the trace's clock), its future's address, what
-- it returned (pid, thread name) and tostring(f), to the file arg[1].
local SCRIPT = [=[
local futures = require "concurrent.futures"
local cjson = require "cjson"
local log = {}
local function task(fn, ex, ...)
  local t = {submit = futures.now()}
  local f = ex:submit(fn, ...)
  t.f = f
  t.future = tostring(f):match("at (0x%x+)")
  log[#log + 1] = t
  return t
end
local function finish(t)
  local ok, a, b = pcall(t.f.result, t.f)
  t.returned = futures.now()
  t.ok, t.pid, t.name = ok, ok and a or nil, ok and b or nil
  t.str = tostring(t.f)
  t.f = nil
end
local function who() return futures.getpid(), futures.thread_name() end
local th = futures.ThreadPoolExecutor{max_workers = 2}
local gate = futures.Future()
local blocked = task(function(g) g:result() return futures.getpid(), futures.thread_name() end, th, gate)
local other = task(who, th)
finish(other)
-- one worker is held by `blocked`; the other takes `filler`; `victim`
-- waits in the queue and is cancelled there
local gate2 = futures.Future()
local filler = task(function(g) g:result() return futures.getpid(), futures.thread_name() end, th, gate2)
local victim = task(who, th)
assert(victim.f:cancel())
gate:set_result(true)
gate2:set_result(true)
finish(blocked) finish(filler) finish(victim)
local bad = task(function() error("boom") end, th)
finish(bad)
for _, method in ipairs{"spawn", "fork"} do
  local p = futures.ProcessPoolExecutor{max_workers = 1, start_method = method}
  finish(task(who, p))
  local pb = task(function() error("far") end, p)
  finish(pb)
  p:shutdown()
end
local out = assert(io.open(arg[1], "w"))
out:write(cjson.encode(log))
out:close()
if arg[2] == "exit" then os.exit(3) end
if arg[2] == "error" then error("the script fails") end
]=]

local function run_traced(trace, mode, how)
  local script, logf = os.tmpname() .. ".lua", os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write('package.cpath = "./?.so;" .. package.cpath\n', SCRIPT)
  f:close()
  local cmd
  if how == "cli" then
    cmd = ("timeout 60 bin/luafutures --trace %s %s %s %s 2>&1"):format(trace, script, logf, mode or "")
  else
    cmd = ("LUAFUTURES_TRACE=%s timeout 60 lua5.4 %s %s %s 2>&1"):format(trace, script, logf, mode or "")
  end
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, status = p:close()
  os.remove(script)
  local text = slurp(logf)
  assert.is_string(text, out)
  local log = cjson.decode(text)
  os.remove(logf)
  return log, status, out
end

local function check_trace(trace, log)
  local doc = cjson.decode((assert(slurp(trace))))
  assert.equal("ms", doc.displayTimeUnit)
  local t0 = doc.otherData.t0
  local names, byfuture, flows = {}, {}, {s = 0, f = 0}
  for _, e in ipairs(doc.traceEvents) do
    if e.ph == "M" and e.name == "thread_name" then
      names[e.pid .. ":" .. e.tid] = e.args.name
    elseif e.ph == "X" and e.cat == "task" then
      -- ids count the traced state's submits, as the script logged them
      local k = e.args.id
      byfuture[k] = byfuture[k] or {}
      table.insert(byfuture[k], e)
    elseif e.ph == "s" or e.ph == "f" then
      flows[e.ph] = flows[e.ph] + 1
    end
  end
  for id, t in ipairs(log) do
    local evs = byfuture[id]
    assert.is_table(evs, "no X event for task " .. id)
    assert.equal(1, #evs)
    local e = evs[1]
    assert.equal(t.future, e.args.future)
    local ts, te = t0 + e.ts / 1e6, t0 + (e.ts + e.dur) / 1e6
    assert.is_true(ts >= t.submit, "starts before its submit")
    assert.is_true(te <= t.returned, "ends after its result() returned")
    local name = names[e.pid .. ":" .. e.tid]
    if t.ok and t.name == "MainThread" then -- a process worker
      assert.equal(t.pid, e.pid)
      assert.equal(("process %d"):format(t.pid), name)
      assert.equal("returned", e.args.outcome)
    elseif t.ok then
      assert.equal(t.pid, e.pid)
      assert.equal(t.name, name)
      assert.equal("returned", e.args.outcome)
      assert.matches("worker=" .. t.name:gsub("%-", "%%-") .. ">$", t.str)
    elseif t.str:match("cancelled") then
      assert.equal("cancelled", e.args.outcome)
    else
      assert.equal("raised", e.args.outcome)
    end
  end
  assert.is_true(flows.s >= #log - 1 and flows.f >= #log - 1)
  return doc
end

describe("futures.trace", function()
  local trace
  before_each(function() trace = os.tmpname() .. ".json" end)
  after_each(function() os.remove(trace) end)

  it("records one X event per task, inside its submit and its result()", function()
    if not support.children_ok then return pending("children under TSan") end
    local log, status, out = run_traced(trace)
    assert.equal(0, status, out)
    assert.equal(9, #log)
    check_trace(trace, log)
  end)

  it("leaves a complete file after an error exit and after os.exit", function()
    if not support.children_ok then return pending("children under TSan") end
    for _, mode in ipairs{"error", "exit"} do
      local log, status, out = run_traced(trace, mode)
      assert.equal(mode == "exit" and 3 or 1, status, out)
      check_trace(trace, log)
    end
  end)

  it("is what luafutures --trace writes", function()
    if not support.children_ok then return pending("children under TSan") end
    local log, status, out = run_traced(trace, "exit", "cli")
    assert.equal(3, status, out)
    check_trace(trace, log)
  end)

  it("writes a slice for each blocking wait of the traced state", function()
    futures.trace(trace)
    local ex = futures.ThreadPoolExecutor(2)
    -- A task blocked on a gate that a callback of this state opens, two
    -- callbacks down: `done`'s callback (which a poll at a wait's entry
    -- may already run) sets `relay`, whose callback, posted while
    -- callbacks run, waits for the next poll, inside the wait, so every
    -- wait below blocks.
    local function gated()
      local gate, done, relay = support.gate(), futures.Future(), futures.Future()
      relay:add_done_callback(function() gate:set_result(true) end)
      done:add_done_callback(function() relay:set_result(true) end)
      return gate, done
    end
    local function blocked()
      local gate, done = gated()
      local f = ex:submit(function(g) return g:result() end, gate)
      ex:submit(function(d) d:set_result(true) end, done)
      return f
    end
    blocked():result()
    futures.wait({blocked()})
    for _ in futures.as_completed({blocked()}) do end
    local gate, done = gated()
    local it = ex:map(function(g) return g:result() end, {gate})
    ex:submit(function(d) d:set_result(true) end, done)
    it()
    ex:shutdown()
    futures.trace(false)
    local doc = cjson.decode((assert(slurp(trace))))
    local waits = {}
    for _, e in ipairs(doc.traceEvents) do
      if e.cat == "wait" then
        waits[e.name] = (waits[e.name] or 0) + 1
        assert.equal(futures.getpid(), e.pid)
        assert.is_true(e.dur > 0)
      end
    end
    assert.same({result = 1, wait = 1, as_completed = 1, map = 1}, waits)
  end)

  it("draws an SVG timeline with one bar per task", function()
    if not support.children_ok then return pending("children under TSan") end
    local svg = os.tmpname() .. ".svg"
    local log, status, out = run_traced(svg)
    assert.equal(0, status, out)
    local p = io.popen(("python3 -c '%s' %s 2>&1"):format(
      "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); " ..
      "print(sum(1 for x in r.iter(\"{http://www.w3.org/2000/svg}rect\") if x.get(\"class\") == \"task\"))",
      svg))
    local n = p:read("a")
    p:close()
    os.remove(svg)
    assert.equal(#log, tonumber(n), n)
  end)

  it("names the function, the executor and the outcome", function()
    futures.trace(trace)
    local ex = futures.ThreadPoolExecutor{max_workers = 1, thread_name_prefix = "obs"}
    ex:submit(function() return 1 end):result()
    ex:shutdown()
    futures.trace(false)
    local doc = cjson.decode((assert(slurp(trace))))
    local x
    for _, e in ipairs(doc.traceEvents) do
      if e.cat == "task" then x = e end
    end
    assert.matches("observe_spec%.lua:%d+$", x.name)
    assert.equal("obs", x.args.executor)
    assert.equal("returned", x.args.outcome)
  end)

  it("refuses a path it cannot write, and says so once for the variable", function()
    local err = support.error_of(futures.trace, "/nonexistent/dir/t.json")
    assert.matches("cannot open trace file '/nonexistent/dir/t.json': No such file", err)
    assert.matches("bad argument #1 to '.-trace' %(string or false expected, got number%)",
                   support.error_of(futures.trace, 3))
    assert.matches("bad argument #1 to '.-trace' %(string or false expected, got boolean%)",
                   support.error_of(futures.trace, true))
    if not support.children_ok then return end
    local out, err2, status = support.run_script([[
      local futures = require "concurrent.futures"
      print(futures.ThreadPoolExecutor(1):submit(function() return 7 end):result())
    ]], "LUAFUTURES_TRACE=/nonexistent/dir/t.json")
    assert.equal(0, status)
    assert.equal("7\n", out)
    assert.equal("luafutures: LUAFUTURES_TRACE: cannot open trace file " ..
                 "'/nonexistent/dir/t.json': No such file or directory\n", err2)
  end)
end)

describe("futures.progress", function()
  -- n tasks, each blocked on its own gate until the test releases it.
  local function gated(ex, n)
    local gates, fs = {}, {}
    for i = 1, n do
      gates[i] = support.gate()
      fs[i] = ex:submit(function(g) return g:result() end, gates[i])
    end
    return gates, fs
  end

  local function lines_of(text)
    local t = {}
    for l in text:gmatch("[^\r\n]+") do
      l = l:gsub("\27%[K", "")
      if l ~= "" then t[#t + 1] = l end
    end
    return t
  end

  it("draws a line per completion through a pipe, ending at 100%", function()
    if not support.children_ok then return pending("children under TSan") end
    local path = os.tmpname()
    local pipe = assert(io.popen("cat > " .. path, "w"))
    local ex = futures.ThreadPoolExecutor(4)
    local gates, fs = gated(ex, 4)
    local seen = 0
    for i, f in futures.progress(fs, {file = pipe, desc = "work", interval = 0}) do
      gates[i]:set_result(i)
      assert.equal(i, f:result())
      seen = seen + 1
    end
    pipe:close()
    ex:shutdown()
    assert.equal(4, seen)
    local lines = lines_of(slurp(path))
    os.remove(path)
    assert.matches("^work:   0%% 0/4 ", lines[1])
    for _, l in ipairs(lines) do
      assert.matches("^work: +%d+%% %d/4 %[%d%d:%d%d<[%d:?]+, [%d.?]+ it/s%]$", l)
    end
    assert.matches("^work: 100%% 4/4 ", lines[#lines])
    assert.equal(5, #lines) -- 0, 1, 2, 3 and 4 done: one line each
  end)

  it("counts completions, not consumption", function()
    local ex = futures.ThreadPoolExecutor(2)
    local gates, fs = gated(ex, 2)
    local out = {}
    local file = {write = function(_, s) out[#out + 1] = s end}
    local step = futures.progress(fs, {file = file, interval = 0})
    gates[2]:set_result(2)   -- the second finishes first
    fs[2]:result()
    assert.matches(" 1/2 ", out[#out])
    local _, first = step()
    gates[1]:set_result(1)
    first:result()
    step()
    assert.is_nil(step())
    assert.matches("100%% 2/2", out[#out])
    ex:shutdown()
  end)

  it("redraws in place on a terminal", function()
    if not support.children_ok then return pending("children under TSan") end
    local PTYRUN = "build/tools/ptyrun"
    if not io.open(PTYRUN) then return pending("no " .. PTYRUN .. ": run make test") end
    local script = os.tmpname() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write('package.cpath = "./?.so;" .. package.cpath\n', [[
      local futures = require "concurrent.futures"
      local ex = futures.ThreadPoolExecutor(3)
      local gates, fs = {}, {}
      for i = 1, 3 do
        gates[i] = futures.Future()
        fs[i] = ex:submit(function(g) return g:result() end, gates[i])
      end
      for i, f in futures.progress(fs, {desc = "tty"}) do
        io.read("l")          -- the test says when the next task ends
        gates[i]:set_result(i)
        f:result()
      end
    ]])
    f:close()
    -- a terminal is redrawn at most 10 times a second: which of 1/3 and
    -- 2/3 show depends on the clock, so all three are released at once
    local steps = {"0/3", "\r\r\r", "3/3", ""}
    local words = {}
    for _, w in ipairs(steps) do words[#words + 1] = "'" .. w .. "'" end
    local p = io.popen(("TERM=xterm %s %s -- lua5.4 %s 2>&1"):format(
      PTYRUN, table.concat(words, " "), script))
    local out = p:read("a")
    local _, _, code = p:close()
    os.remove(script)
    assert.equal(0, code, out)
    local draws = {}
    for d in out:gmatch("\r(tty:[^\r\n]*)") do draws[#draws + 1] = d:gsub("\27%[K", "") end
    assert.is_true(#draws >= 2, out)
    assert.matches("^tty:   0%%|", draws[1])
    for _, d in ipairs(draws) do
      assert.matches("^tty: +%d+%%|[# ]*| %d/3 %[%d%d:%d%d<[%d:?]+, [%d.?]+ it/s%]$", d)
    end
    assert.matches("^tty: 100%%|#+| 3/3", draws[#draws])
  end)

  it("wraps map and as_completed iterators, and map's progress option", function()
    local ex = futures.ThreadPoolExecutor(2)
    local out = {}
    local file = {write = function(_, s) out[#out + 1] = s end}
    local sum = 0
    for _, v in futures.progress(ex:map(function(x) return x * 2 end, {1, 2, 3, 4, 5},
                                        {chunksize = 2}), {file = file}) do
      sum = sum + v
    end
    assert.equal(30, sum)
    assert.matches("100%% 5/5", out[#out])
    out = {}
    local fs = {ex:submit(function() return 1 end), ex:submit(function() return 2 end)}
    local n = 0
    for f in futures.progress(futures.as_completed(fs), {file = file, desc = "ac"}) do n = n + f:result() end
    assert.equal(3, n)
    assert.matches("^ac: 100%% 2/2", out[#out])
    out = {}
    sum = 0
    for _, v in ex:map(function(x) return x end, {1, 2, 3}, {progress = {file = file, total = 3}}) do
      sum = sum + v
    end
    assert.equal(6, sum)
    assert.matches("100%% 3/3", out[#out])
    ex:shutdown()
  end)

  it("draws nothing with file = false, and refuses what it cannot wrap", function()
    local ex = futures.ThreadPoolExecutor(1)
    local n = 0
    for _ in futures.progress({ex:submit(function() return 1 end)}, {file = false}) do n = n + 1 end
    assert.equal(1, n)
    ex:shutdown()
    local cases = {
      {{3}, "bad argument #1 to '.-progress' %(map iterator, as_completed iterator or array of futures expected, got number%)"},
      {{function() end}, "bad argument #1 to '.-progress' %(map iterator, as_completed iterator or array of futures expected, got function%)"},
      {{{1}}, "bad argument #1 to '.-progress' %(Future expected at index 1, got number%)"},
      {{{}, {colour = 1}}, "bad argument #2 to '.-progress' %(unknown option 'colour'%)"},
      {{{}, {total = -1}}, "bad argument #2 to '.-progress' %('total' must be a non%-negative integer%)"},
      {{{}, {file = 3}}, "bad argument #2 to '.-progress' %('file' must be a file, an object with a write method, or false%)"},
    }
    for _, c in ipairs(cases) do
      assert.matches(c[2], support.error_of(futures.progress, table.unpack(c[1])))
    end
  end)
end)

describe("ex:stats()", function()
  it("counts a thread pool's tasks through every state", function()
    local ex = futures.ThreadPoolExecutor(2)
    local s = ex:stats()
    assert.same({queued = 0, running = 0, done = 0, failed = 0, cancelled = 0,
                 workers = 0, busy = 0}, s)
    local started = futures.Queue()
    local g1, g2 = support.gate(), support.gate()
    local function held(q, g) q:put(true) return g:result() end
    local a = ex:submit(held, started, g1)
    local b = ex:submit(held, started, g2)
    started:get() started:get() -- both run now
    local c = ex:submit(function() return 3 end)
    local d = ex:submit(function() return 4 end)
    s = ex:stats()
    assert.same({queued = 2, running = 2, done = 0, failed = 0, cancelled = 0,
                 workers = 2, busy = 2}, s)
    assert.is_true(d:cancel())
    s = ex:stats()
    assert.equal(1, s.queued)
    assert.equal(1, s.cancelled)
    g1:set_result(1)
    a:result()
    c:result()
    local e = ex:submit(function() error("no") end)
    e:exception()
    g2:set_result(2)
    b:result()
    s = ex:stats()
    assert.same({queued = 0, running = 0, done = 3, failed = 1, cancelled = 1,
                 workers = 2, busy = 0}, s)
    ex:shutdown()
    assert.equal(0, ex:stats().workers)
  end)

  it("counts a process pool's tasks", function()
    if not support.children_ok then return pending("children under TSan") end
    local ex = futures.ProcessPoolExecutor{max_workers = 1}
    assert.equal(0, ex:stats().workers)
    local ok = ex:submit(function() return 1 end)
    local bad = ex:submit(function() error("x") end)
    ok:result()
    bad:exception()
    local s = ex:stats()
    -- and the bytes its tasks took to the workers, no Shared among them
    assert.is_true(s.bytes_sent > 0)
    s.bytes_sent = nil
    assert.same({queued = 0, running = 0, done = 1, failed = 1, cancelled = 0,
                 workers = 1, busy = 0, shared_sent = 0}, s)
    ex:shutdown()
  end)
end)
