-- ProcessPoolExecutor: tasks in worker processes, both start methods.
--
-- A Future cannot enter another process, so process tasks block on file
-- gates instead: the task polls for a file that the test creates. The test
-- learns that a task started the same way, from a file the task creates.
local support = require "support"
local futures = support.futures

local METHODS = {"spawn", "fork"}

-- ---- helpers ----------------------------------------------------------------

local function new_gate()
  local path = os.tmpname()
  os.remove(path)
  return path
end

local function open_gate(path)
  local f = assert(io.open(path, "w"))
  f:close()
end

-- Runs in a worker (or here): returns once the file exists.
local function wait_gate(path)
  local fu = require "concurrent.futures"
  while true do
    local f = io.open(path)
    if f then f:close() return end
    fu.sleep(0.002)
  end
end

local fds = support.fds

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if f then f:close() end
  return f ~= nil
end

local function broken(err) return futures.BrokenProcessPool:is(err) end

local run_script = support.run_script

local function with_children(fn)
  return function()
    if not support.children_ok then pending("runs commands: not under ThreadSanitizer") end
    fn()
  end
end

-- ---- the same table of calls through both pool kinds -----------------------

local cyclic = {x = 1}
cyclic.self = cyclic
cyclic[1] = {x = "inner"}
local shared = {1, 2, 3}
local function counter_from(n) return function() n = n + 1 return n end end
local Point = setmetatable({}, {__index = function() return "meta" end})
local deep = {}
for _ = 2, 10000 do deep = {deep} end -- 10,000 tables deep: the codec's limit

local CASES = {
  {"integers stay integers", function(a, b) return a + b, math.type(a + b) end, {1, 2}},
  {"floats", function(x) return x / 4, math.type(x / 4) end, {1}},
  {"binary-safe strings", function(s) return s .. "\0" .. #s end, {"a\0b"}},
  {"nils counted", function() return nil, 2, nil end, {}},
  {"trailing nil arguments", function(...) return select("#", ...), ... end, {1, nil, 3, nil}},
  {"nothing returned", function() end, {}},
  {"cycles", function(t) return t.self == t, t[1].x, t.x end, {cyclic}},
  {"shared references", function(a, b) return a == b, #a end, {shared, shared}},
  {"closures with upvalues", counter_from(10), {}},
  {"C functions by name", math.max, {3, 9, 4}},
  {"modules by name", function(s) return s.upper("x"), s == string end, {string}},
  {"copied metatables", function(p) return p.anything end, {Point}},
  {"nested tables", function(t) return t.a.b.c, #t.list end, {{a = {b = {c = "deep"}}, list = {1, 2, 3}}}},
  {"tables nested 10,000 deep, both ways", function(t)
    local n = 1
    while t[1] do n, t = n + 1, t[1] end
    local r = {}
    for _ = 2, n do r = {r} end
    return n, r
  end, {deep}},
  {"error strings", function() error("bad input", 0) end, {}},
  {"error tables", function() error({code = 7}) end, {}},
  {"error classes", function() error(require("concurrent.futures").TimeoutError("slow")) end, {}},
}

-- A printable form of any value, for comparing outcomes across pools.
local function show(v, seen)
  seen = seen or {}
  if type(v) ~= "table" then
    return math.type(v) and (math.type(v) .. ":" .. tostring(v)) or type(v) .. ":" .. tostring(v)
  end
  if seen[v] then return "<cycle>" end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = show(k, seen) .. "=" .. show(v[k], seen) end
  local mt = getmetatable(v)
  return "{" .. table.concat(parts, ",") .. (mt and ("|" .. tostring(mt.__name or "mt")) or "") .. "}"
end

local function outcome(f)
  local r = table.pack(pcall(f.result, f))
  local parts = {}
  for i = 1, r.n do parts[i] = show(r[i]) end
  return table.concat(parts, " ")
end

-- ---- specs ------------------------------------------------------------------

describe("ProcessPoolExecutor", function()
  after_each(support.collect)

  it("accepts a number or an options table and starts no process before a submit", function()
    local a <close> = futures.ProcessPoolExecutor(3)
    local b <close> = futures.ProcessPoolExecutor{max_workers = 2, start_method = "fork"}
    assert.matches("^<ProcessPoolExecutor at 0x%x+ start_method='spawn' workers=0/3 state=running>$", tostring(a))
    assert.matches("start_method='fork' workers=0/2 state=running", tostring(b))
    local c <close> = futures.ProcessPoolExecutor()
    assert.matches("workers=0/" .. futures.cpu_count() .. " ", tostring(c))
  end)

  it("gives the same results as a thread pool for every kind of value", function()
    local tp <close> = futures.ThreadPoolExecutor(2)
    local pp <close> = futures.ProcessPoolExecutor(2)
    for _, case in ipairs(CASES) do
      local name, fn, args = case[1], case[2], case[3]
      local n = select("#", table.unpack(args))
      local ft = tp:submit(fn, table.unpack(args, 1, math.max(n, #args)))
      local fp = pp:submit(fn, table.unpack(args, 1, math.max(n, #args)))
      assert.equal(outcome(ft), outcome(fp), name)
    end
    local square = function(x, y) return x * x, y end
    assert.same(tp:map(square, {1, 2, 3}, {"a", "b", "c"}):collect(),
                pp:map(square, {1, 2, 3}, {"a", "b", "c"}):collect())
  end)

  for _, method in ipairs(METHODS) do
    describe("with start_method '" .. method .. "'", function()
      local function pool(opts)
        opts = opts or {}
        opts.start_method = method
        opts.max_workers = opts.max_workers or 2
        return futures.ProcessPoolExecutor(opts)
      end

      it("runs a task and returns every value", function()
        local ex <close> = pool()
        local f = ex:submit(function(a, b) return a + b, nil, "x" end, 40, 2)
        local r = table.pack(f:result())
        assert.same({42, nil, "x", n = 3}, r)
        assert.is_true(f:done())
        assert.matches("state=finished returned number", tostring(f))
      end)

      it("keeps an error's value and the worker's traceback", function()
        local ex <close> = pool()
        local f = ex:submit(function() error({code = 42}) end)
        assert.equal(42, f:exception().code)
        assert.matches("process_spec.lua:%d+", f:traceback())
        local g = ex:submit(function(x) error("bad " .. x) end, "input")
        local err = support.error_of(g.result, g)
        assert.matches("process_spec.lua:%d+: bad input$", err)
        assert.matches("stack traceback", g:traceback())
        local h = ex:submit(function() error(require("concurrent.futures").RuntimeError("typed")) end)
        assert.is_true(futures.RuntimeError:is(h:exception()))
        assert.matches("state=finished raised table", tostring(h))
      end)

      it("maps in input order with several chunk sizes", function()
        local ex <close> = pool()
        local xs = {}
        for i = 1, 23 do xs[i] = i end
        for _, chunksize in ipairs{1, 2, 5, 23, 100} do
          local got = {}
          for i, sq, x in ex:map(function(x) return x * x, x end, xs, {chunksize = chunksize}) do
            got[#got + 1] = i
            assert.equal(i * i, sq)
            assert.equal(i, x)
          end
          assert.equal(23, #got)
          for i = 1, 23 do assert.equal(i, got[i]) end
        end
        local r = ex:map(function(a, b) return a .. b end, {"a", "b", "c"}, {"x", "y"}):collect()
        assert.same({"ax", "by", n = 2}, r)
      end)

      it("raises a map call's error at its turn and goes on", function()
        local ex <close> = pool()
        local it = ex:map(function(x) if x == 2 then error("two", 0) end return x end, {1, 2, 3}, {chunksize = 2})
        assert.same({1, 1}, {it()})
        assert.equal("two", support.error_of(it))
        assert.same({3, 3}, {it()})
        assert.is_nil(it())
      end)

      it("runs tasks in worker processes, reused, or renewed with max_tasks_per_child", function()
        local me = futures.getpid()
        local ex <close> = pool{max_workers = 1}
        local p1 = ex:submit(futures.getpid):result()
        local p2 = ex:submit(futures.getpid):result()
        assert.are_not.equal(me, p1)
        assert.equal(p1, p2)
        assert.equal("MainThread", ex:submit(futures.thread_name):result())
        local fresh <close> = pool{max_tasks_per_child = 1}
        local seen, n = {}, 0
        for _ = 1, 5 do
          local pid = fresh:submit(futures.getpid):result()
          assert.is_nil(seen[pid])
          seen[pid], n = true, n + 1
        end
        assert.equal(5, n)
        -- and with several tasks queued at once
        local fs = {}
        for i = 1, 6 do fs[i] = fresh:submit(futures.getpid) end
        for i = 1, 6 do
          local pid = fs[i]:result()
          assert.is_nil(seen[pid])
          seen[pid] = true
        end
      end)

      it("starts workers lazily and reuses a free one", function()
        local ex <close> = pool{max_workers = 4}
        for i = 1, 20 do assert.equal(i + 1, ex:submit(function(x) return x + 1 end, i):result()) end
        assert.matches("workers=1/4", tostring(ex))
      end)

      it("keeps a worker's globals across its tasks", function()
        local ex <close> = pool{max_workers = 1}
        ex:submit(function() counter = (counter or 0) + 1 end):result()
        ex:submit(function() counter = counter + 1 end):result()
        assert.equal(2, ex:submit(function() return counter end):result())
      end)

      it("gives workers the caller's package.path and the module", function()
        local ex <close> = pool{max_workers = 1}
        local path, cpath, loaded = ex:submit(function()
          return package.path, package.cpath, package.loaded["concurrent.futures"] ~= nil
        end):result()
        assert.equal(package.path, path)
        assert.equal(package.cpath, cpath)
        assert.is_true(loaded)
      end)

      it("runs the initializer once per worker with its arguments", function()
        local ex <close> = pool{max_workers = 1, initializer = function(a, b) setup = (setup or "") .. a .. b end,
                                initargs = {"x", "y"}}
        assert.equal("xy", ex:submit(function() return setup end):result())
        assert.equal("xy", ex:submit(function() return setup end):result())
      end)

      it("breaks when the initializer fails, saying so on stderr", function()
        support.expect_stderr(([[
          local futures = require "concurrent.futures"
          local ex <close> = futures.ProcessPoolExecutor{max_workers = 1, start_method = %q,
                                                         initializer = function() error("no setup") end}
          local f = ex:submit(function() return 1 end)
          local ok, err = pcall(f.result, f)
          assert(not ok and futures.BrokenProcessPool:is(err) and futures.BrokenExecutor:is(err))
          assert(tostring(err):find("initializer failed", 1, true))
          local ok2, err2 = pcall(ex.submit, ex, print)
          assert(not ok2 and futures.BrokenProcessPool:is(err2))
          assert(tostring(ex):find("state=broken", 1, true))
        ]]):format(method), "^luafutures: exception in initializer of process %d+: [^\n]*:%d+: no setup\nstack traceback:\n")
      end)

      it("breaks when a worker exits: running and queued futures fail, nothing hangs", function()
        local ex = pool{max_workers = 1}
        local gate = new_gate() -- the worker dies once all are submitted
        local dies = ex:submit(function(g) wait_gate(g) os.exit(3) end, gate)
        local after = {}
        for i = 1, 5 do after[i] = ex:submit(function() return i end) end
        open_gate(gate)
        local err = support.error_of(dies.result, dies)
        os.remove(gate)
        assert.is_true(broken(err))
        assert.matches("^BrokenProcessPool: a child process terminated abruptly, the process pool is not usable anymore "
                       .. "%(worker %d+ exited with status 3%)$", tostring(err))
        for i = 1, #after do assert.is_true(broken(after[i]:exception())) end
        assert.is_true(broken(support.error_of(ex.submit, ex, print)))
        assert.is_true(broken(support.error_of(ex.map, ex, print, {1})))
        ex:shutdown()
        assert.matches("workers=0/1 state=broken", tostring(ex))
      end)

      it("breaks when a worker is killed in the middle of a task", with_children(function()
        local ex = pool()
        local gate = new_gate()
        local running = ex:submit(function(g) wait_gate(g) return "never" end, gate)
        local f = ex:submit(function()
          local fu = require "concurrent.futures"
          os.execute("kill -9 " .. fu.getpid())
          return "not reached"
        end)
        assert.is_true(broken(f:exception()))
        assert.is_true(broken(running:exception()))
        ex:shutdown()
        open_gate(gate)
        os.remove(gate)
      end))

      it("conf10: a worker killed from outside breaks the pool", with_children(function()
        local ex <close> = pool()
        local pid = ex:submit(futures.getpid):result()
        assert.is_true(os.execute(("kill -HUP %d"):format(pid)))
        -- Either submit already knows, or the task learns it while it waits.
        local ok, e = pcall(function() return ex:submit(futures.getpid):result() end)
        assert.is_false(ok)
        assert.is_true(broken(e))
        assert.matches("^BrokenProcessPool: ", tostring(e))
      end))

      it("refuses handles at submit with a TransferError naming the argument", function()
        local ex <close> = pool()
        local tp <close> = futures.ThreadPoolExecutor(1)
        local cases = {
          {{futures.Future()}, "cannot transfer argument #2: Future (a handle cannot leave its process)"},
          {{1, {conn = futures.Future()}},
           "cannot transfer argument #3 (field 'conn'): Future (a handle cannot leave its process)"},
          {{tp}, "cannot transfer argument #2: executor (a handle cannot leave its process)"},
          {{ex}, "cannot transfer argument #2: executor (a handle cannot leave its process)"},
          {{coroutine.create(print)}, "cannot transfer argument #2: thread"},
        }
        for _, case in ipairs(cases) do
          local err = support.error_of(ex.submit, ex, print, table.unpack(case[1]))
          assert.is_true(futures.TransferError:is(err))
          assert.equal(case[2], err.message)
        end
        local err = support.error_of(ex.map, ex, print, {futures.Future()})
        assert.equal("cannot transfer argument #2: Future (a handle cannot leave its process)", err.message)
        err = support.error_of(tp.submit, tp, print, ex)
        assert.equal("cannot transfer argument #2: ProcessPoolExecutor (it stays in the state that made it)",
                     err.message)
        local f = ex:submit(function() return coroutine.create(print) end)
        assert.is_true(futures.TransferError:is(f:exception()))
        assert.equal(1, ex:submit(function() return 1 end):result()) -- still usable
      end)

      it("shuts down: workers exit and are reaped, no descriptor is left open", function()
        local before = fds()
        local ex = pool{max_workers = 2, max_tasks_per_child = 3}
        local gate = new_gate()
        local fs = {}
        for i = 1, 2 do
          fs[i] = ex:submit(function(g) wait_gate(g) return require("concurrent.futures").getpid() end, gate)
        end
        for i = 3, 12 do fs[i] = ex:submit(futures.getpid) end
        open_gate(gate)
        local pids = {}
        for i = 1, 12 do pids[fs[i]:result()] = true end
        ex:shutdown()
        ex:shutdown()
        assert.matches("workers=0/2 state=shutdown", tostring(ex))
        for pid in pairs(pids) do assert.is_false(alive(pid), "worker " .. pid .. " not reaped") end
        assert.equal(before, fds())
        local err = support.error_of(ex.submit, ex, print)
        assert.equal("RuntimeError: cannot schedule new futures after shutdown", tostring(err))
        os.remove(gate)
      end)

      it("shutdown(false) returns at once and the tasks still finish", function()
        local ex = pool{max_workers = 1}
        local gate = new_gate()
        local f = ex:submit(function(g) wait_gate(g) return "late" end, gate)
        ex:shutdown(false)
        assert.is_false(f:done())
        open_gate(gate)
        assert.equal("late", f:result())
        ex:shutdown()
        os.remove(gate)
      end)

      it("cancel_futures cancels every future not yet sent to a worker", function()
        local ex = pool{max_workers = 1}
        local gate, started = new_gate(), new_gate()
        local running = ex:submit(function(g, s)
          local f = io.open(s, "w") f:close()
          wait_gate(g)
          return "done"
        end, gate, started)
        wait_gate(started)
        local queued = {}
        for i = 1, 6 do queued[i] = ex:submit(function() return i end) end
        ex:shutdown{wait = false, cancel_futures = true}
        -- Up to two tasks per worker may already wait in the queue socket:
        -- they count as running, as in Python, and run.
        local cancelled = 0
        for i = 1, 6 do
          if queued[i]:cancelled() then cancelled = cancelled + 1 else assert.is_true(queued[i]:running()) end
        end
        assert.is_true(cancelled >= 4, cancelled .. " cancelled")
        open_gate(gate)
        assert.equal("done", running:result())
        for i = 1, 6 do
          if not queued[i]:cancelled() then assert.equal(i, queued[i]:result()) end
        end
        ex:shutdown(true, true)
        os.remove(gate)
        os.remove(started)
      end)

      it("<close> waits for the tasks; the map iterator and futures do not keep the pool alive", function()
        local f
        do
          local ex <close> = pool{max_workers = 1}
          f = ex:submit(function() require("concurrent.futures").sleep(0.05) return "late" end)
        end
        assert.is_true(f:done())
        local weak = setmetatable({}, {__mode = "v"})
        local it, g
        do
          local ex = pool()
          weak.ex = ex
          it = ex:map(function(x) return -x end, {1, 2, 3}, {chunksize = 2})
          g = ex:submit(function() return 3 end)
        end
        support.collect()
        assert.is_nil(weak.ex)
        assert.is_true(g:done())
        assert.same({-1, -2, -3, n = 3}, it:collect())
      end)

      it("starts beside a thread pool whose workers are busy", function()
        local tp <close> = futures.ThreadPoolExecutor(3)
        local stop = futures.Future()
        local busy = {}
        for i = 1, 3 do
          -- Allocates, and takes runtime locks, without pause.
          busy[i] = tp:submit(function(s)
            local n = 0
            while not s:done() do
              local f = require("concurrent.futures").Future()
              f:set_result({n, tostring(n)})
              n = n + #f:result()[2]
            end
            return n > 0
          end, stop)
        end
        for _ = 1, 5 do
          local ex <close> = pool()
          local fs = {}
          for i = 1, 4 do fs[i] = ex:submit(function(x) return x * 2, futures.getpid() end, i) end
          for i = 1, 4 do assert.equal(i * 2, (fs[i]:result())) end
        end
        stop:set_result(true)
        for i = 1, 3 do assert.is_true(busy[i]:result()) end
      end)

      it("can be used from a thread pool's task", function()
        local tp <close> = futures.ThreadPoolExecutor(2)
        local f = tp:submit(function(m)
          local fu = require "concurrent.futures"
          local ex <close> = fu.ProcessPoolExecutor{max_workers = 1, start_method = m}
          return ex:submit(function(x) return x + 1 end, 41):result()
        end, method)
        assert.equal(42, f:result())
      end)

      it("sends big tasks and results", function()
        local ex <close> = pool{max_workers = 1}
        local big = string.rep("0123456789", 200000) -- 2 MB
        local n, echo = ex:submit(function(s) return #s, s:upper() end, big):result()
        assert.equal(#big, n)
        assert.equal(big, echo)
      end)

      it("prints to the parent's stdout; a script never exits while tasks run", with_children(function()
        local out, err, status = run_script(([[
          local futures = require "concurrent.futures"
          local ex = futures.ProcessPoolExecutor{max_workers = 1, start_method = %q}
          ex:submit(function() print("from the worker") end):result()
          ex:submit(function() require("concurrent.futures").sleep(0.2) print("late task done") end)
          print("script done")
        ]]):format(method))
        assert.equal(0, status, err)
        assert.equal("", err)
        assert.equal("from the worker\nscript done\nlate task done\n", out)
      end))
    end)
  end

  it("reports a missing or unusable worker executable at construction", function()
    local err = support.error_of(futures.ProcessPoolExecutor, {worker = "/nonexistent/luafutures-worker"})
    assert.is_true(futures.RuntimeError:is(err))
    assert.matches("'/nonexistent/luafutures%-worker': No such file or directory", err.message)
    err = support.error_of(futures.ProcessPoolExecutor, {worker = "README.md"})
    assert.matches("Permission denied", err.message)
    -- a directory is searchable (access X_OK says yes) but cannot be run
    err = support.error_of(futures.ProcessPoolExecutor, {worker = "spec"})
    assert.is_true(futures.RuntimeError:is(err))
    assert.matches("'spec': Is a directory", err.message)
  end)

  it("forks without a worker executable", function()
    if not support.fork_ok then pending(support.FORK_LIMIT) end
    local ex <close> = futures.ProcessPoolExecutor{worker = "/nonexistent", start_method = "fork", max_workers = 1}
    assert.equal(2, ex:submit(function() return 2 end):result())
  end)

  it("says so when a worker finds no memory for its hello", function()
    -- A 256 MiB package.path travels in the hello. The child script
    -- limits its own address space to what it uses plus 128 MiB, so a
    -- forked worker (which inherits both) cannot allocate the hello's
    -- copy: it reads the hello to its end and exits with status 3, which
    -- the pool names (it was "exited at once (Broken pipe)", a send that
    -- failed, or a bare "exited with status 3").
    if not support.fork_ok then pending(support.FORK_LIMIT) end
    if os.execute("command -v prlimit >/dev/null 2>&1") ~= true then pending("no prlimit") end
    local out, err = run_script([[
      local futures = require "concurrent.futures"
      package.path = string.rep("x", 1 << 28)
      local ex = futures.ProcessPoolExecutor{max_workers = 1, start_method = "fork"}
      package.path = ""
      collectgarbage() collectgarbage()
      local vm
      for l in io.lines("/proc/self/status") do vm = vm or tonumber(l:match("^VmSize:%s*(%d+)")) end
      assert(os.execute(("prlimit --pid %d --as=%d"):format(futures.getpid(), (vm + 128 * 1024) * 1024)))
      local ok, e = pcall(function() return ex:submit(function() return 1 end):result() end)
      print(ok, futures.BrokenProcessPool:is(e), tostring(e))
    ]])
    assert.matches("^false\ttrue\tBrokenProcessPool: a child process terminated abruptly, the process pool is "
                   .. "not usable anymore %(worker %d+ exited with status 3: out of memory before it could "
                   .. "start%)\n$", out, nil, err)
  end)

  it("fails a task whose result finds no memory with Lua's memory error, and goes on", function()
    -- The task limits its own worker's address space to what it uses now
    -- plus 32 MiB and returns a 64 MiB string: the buffer its bytes are
    -- written in cannot be had. The task fails with the string Lua's own
    -- memory error carries (not a TransferError table) and the worker
    -- serves the next task.
    if support.sanitizer then pending("out of memory aborts under a sanitizer") end
    if os.execute("command -v prlimit >/dev/null 2>&1") ~= true then pending("no prlimit") end
    local out, err = run_script(support.SHORT_RESULT .. [[
      local ex <close> = futures.ProcessPoolExecutor{max_workers = 1}
      local ok, e = pcall(function() return ex:submit(short):result() end)
      print(ok, type(e), e == "not enough memory" and e or tostring(e))
      print(ex:submit(function() return 2 end):result())
    ]])
    assert.equal("false\tstring\tnot enough memory\n2\n", out, err)
  end)

  it("breaks, never hangs, when the worker executable dies at once", function()
    local ex <close> = futures.ProcessPoolExecutor{worker = "/bin/false", max_workers = 1}
    local ok, err = pcall(function() return ex:submit(print):result() end)
    assert.is_false(ok)
    assert.is_true(broken(err) or futures.RuntimeError:is(err), tostring(err))
  end)

  it("breaks, never hangs, when the worker program never answers", with_children(function()
    local fake = os.tmpname()
    local f = assert(io.open(fake, "w"))
    f:write("#!/bin/sh\nexec sleep 1000\n")
    f:close()
    os.execute("chmod +x " .. fake)
    local out, err, status = run_script(([[
      local futures = require("concurrent.futures")
      local ex = futures.ProcessPoolExecutor{max_workers = 1, worker = %q}
      local f = ex:submit(function() return 1 end)
      local ok, e = pcall(f.result, f)
      io.write(tostring(futures.BrokenProcessPool:is(e)), " ", e.message)
    ]]):format(fake), "LUAFUTURES_WORKER_TIMEOUT=0.2")
    os.remove(fake)
    assert.equal("", err)
    assert.equal(0, status)
    assert.matches("^true a worker process did not answer when it started", out)
  end))

  it("refuses a package.path that is not a string", function()
    local saved = package.path
    package.path = {}
    local ok, err = pcall(futures.ProcessPoolExecutor, 1)
    local tok, terr = pcall(futures.ThreadPoolExecutor, 1)
    package.path = saved
    assert.is_false(ok)
    assert.matches("'package.path' must be a string", err)
    assert.is_false(tok)
    assert.matches("'package.path' must be a string", terr)
  end)

  it("finds the worker through LUAFUTURES_WORKER", with_children(function()
    local out, err = run_script([[
      local ok, e = pcall(require("concurrent.futures").ProcessPoolExecutor, 1)
      io.write(e.message)
    ]], "LUAFUTURES_WORKER=/no/such")
    assert.equal("", err)
    assert.matches("^cannot run the worker executable '/no/such': No such file or directory", out)
    out, err = run_script([[
      local ex <close> = require("concurrent.futures").ProcessPoolExecutor(1)
      io.write(ex:submit(function() return arg and arg[0] end):result() or "no arg")
    ]], "LUAFUTURES_WORKER=" .. os.getenv("PWD") .. "/bin/luafutures-worker")
    assert.equal("", err)
    assert.equal("no arg", out)
  end))

  it("misuse raises lauxlib-style errors", function()
    local ex <close> = futures.ProcessPoolExecutor(1)
    local tp <close> = futures.ThreadPoolExecutor(1)
    local cases = {
      {function() futures.ProcessPoolExecutor(0) end,
       "bad argument #1 to 'ProcessPoolExecutor' ('max_workers' must be greater than 0)"},
      {function() futures.ProcessPoolExecutor{thread_name_prefix = "x"} end,
       "bad argument #1 to 'ProcessPoolExecutor' (unknown option 'thread_name_prefix')"},
      {function() futures.ProcessPoolExecutor{start_method = "x"} end,
       "bad argument #1 to 'ProcessPoolExecutor' (invalid start_method 'x')"},
      {function() futures.ProcessPoolExecutor{start_method = 1} end,
       "bad argument #1 to 'ProcessPoolExecutor' ('start_method' must be a string)"},
      {function() futures.ProcessPoolExecutor{max_tasks_per_child = 1.5} end,
       "bad argument #1 to 'ProcessPoolExecutor' ('max_tasks_per_child' must be an integer)"},
      {function() futures.ProcessPoolExecutor{max_tasks_per_child = 0} end,
       "bad argument #1 to 'ProcessPoolExecutor' ('max_tasks_per_child' must be greater than 0)"},
      {function() futures.ProcessPoolExecutor{max_tasks_per_child = math.maxinteger} end,
       "bad argument #1 to 'ProcessPoolExecutor' ('max_tasks_per_child' is too large)"},
      {function() futures.ProcessPoolExecutor{initializer = 1} end,
       "bad argument #1 to 'ProcessPoolExecutor' ('initializer' must be a function)"},
      {function() futures.ProcessPoolExecutor("x") end,
       "bad argument #1 to 'ProcessPoolExecutor' (table or integer expected, got string)"},
      {function() ex:submit(nil) end, "bad argument #1 to 'submit' (function expected, got nil)"},
      {function() ex:shutdown{cancel = true} end, "bad argument #1 to 'shutdown' (unknown option 'cancel')"},
      {function() ex:map(print, {1}, {chunksize = 0}) end, "bad argument #3 to 'map' ('chunksize' must be at least 1)"},
      {function() ex.submit(tp, print) end,
       "bad argument #1 to 'submit' (ProcessPoolExecutor expected, got ThreadPoolExecutor)"},
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(case[1])
      assert.is_false(ok)
      assert.equal(case[2], (tostring(err):gsub("^[^:]*:%d+: ", "")))
    end
  end)
end)
