-- The executor cases the other pools pass, for MPIPoolExecutor: run by
-- spec/mpi_spec.lua as one MPI job of three ranks,
--   mpiexec -n 3 bin/luafutures -m concurrent.futures.mpi busted -p cases spec/mpi
-- so busted runs on rank 0 and ranks 1 and 2 serve. Nothing here sleeps
-- to synchronise: a task that must wait polls for a file the test writes.
package.cpath = "./?.so;" .. package.cpath
local futures = require "concurrent.futures"
local mpi = require "concurrent.futures.mpi"

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return err
end

-- A file a task waits for, so a test decides when it may end.
local function gate()
  local path = os.tmpname()
  os.remove(path)
  return path, function() assert(io.open(path, "w")):close() end
end

local function wait_for(path)
  local futures = require "concurrent.futures"
  while not io.open(path) do futures.sleep(0.001) end
  os.remove(path)
  return true
end

describe("MPIPoolExecutor under mpiexec -n 3", function()
  after_each(function() collectgarbage() collectgarbage() end)

  it("knows the job", function()
    assert.equal(0, mpi.rank)
    assert.equal(3, mpi.size)
    assert.is_string(mpi.host)
  end)

  it("returns every value, nil included, from a worker rank", function()
    local ex <close> = mpi.MPIPoolExecutor()
    assert.matches("^<MPIPoolExecutor at 0x%x+ host='.*' workers=0/2 state=running>$", tostring(ex))
    local f = ex:submit(function(a, b) return a + b, nil, futures.thread_name() end, 2, 3)
    local s, n, name = f:result()
    assert.equal(5, s)
    assert.is_nil(n)
    assert.equal(3, select("#", f:result()))
    assert.matches("^MPIWorker%-[12]@" .. mpi.host:gsub("%p", "%%%0") .. "$", name)
    assert.matches("state=finished returned number", tostring(f))
  end)

  it("moves large values both ways", function()
    local ex <close> = mpi.MPIPoolExecutor()
    local big = string.rep("x", 8 * 1024 * 1024)
    local n, back = ex:submit(function(s) return #s, s .. "y" end, big):result()
    assert.equal(#big, n)
    assert.equal(#big + 1, #back)
    -- large results while the ranks go on computing: each send completes
    -- before its rank runs the next task
    local fs = {}
    for i = 1, 6 do
      fs[i] = ex:submit(function(k)
        local x = 0
        for j = 1, 1e6 do x = x + j end
        return string.rep("z", 4 * 1024 * 1024), k, x
      end, i)
    end
    for i = 1, 6 do
      local s, k = fs[i]:result()
      assert.equal(4 * 1024 * 1024, #s)
      assert.equal(i, k)
    end
  end)

  it("keeps a rank's globals across the tasks of one executor", function()
    local ex <close> = mpi.MPIPoolExecutor{max_workers = 1}
    ex:submit(function() counter = (counter or 0) + 1 end):result()
    ex:submit(function() counter = counter + 1 end):result()
    assert.equal(2, ex:submit(function() return counter end):result())
  end)

  it("re-raises a task's own error value, with a traceback headed by rank and host", function()
    local ex <close> = mpi.MPIPoolExecutor()
    local f = ex:submit(function() error({code = 42, why = "table"}) end)
    local e = error_of(f.result, f)
    assert.same({code = 42, why = "table"}, e)
    assert.matches("^rank [12] of 3 on .+:\n", f:traceback())
    assert.matches("pool_cases.lua:%d+", f:traceback())
    local g = ex:submit(function() error("plain", 0) end)
    assert.equal("plain", error_of(g.result, g))
    assert.equal("plain", g:exception())
    assert.matches("finished raised string", tostring(g))
  end)

  it("maps in input order, chunks and all", function()
    local ex <close> = mpi.MPIPoolExecutor()
    local xs = {}
    for i = 1, 50 do xs[i] = i end
    for _, chunksize in ipairs{1, 7, 100} do
      local got = {}
      for i, v, name in ex:map(function(x) return x * x, futures.thread_name() end, xs, {chunksize = chunksize}) do
        assert.matches("^MPIWorker%-", name)
        got[i] = v
      end
      for i = 1, 50 do assert.equal(i * i, got[i]) end
    end
    local t = ex:map(function(a, b) return a .. b end, {"a", "b", "c"}, {"x", "y"}):collect()
    assert.same({"ax", "by", n = 2}, t)
  end)

  it("raises a map task's error when its turn comes and goes on", function()
    local ex <close> = mpi.MPIPoolExecutor()
    local it = ex:map(function(x) if x == 2 then error("two", 0) end return x end, {1, 2, 3}, {chunksize = 2})
    assert.same({1, 1}, {it()})
    assert.equal("two", error_of(it))
    assert.same({3, 3}, {it()})
  end)

  it("cancels what has not been sent to a rank", function()
    local ex <close> = mpi.MPIPoolExecutor{max_workers = 1}
    local path, open = gate()
    local first = ex:submit(wait_for, path)
    -- a rank is sent 32 tasks ahead of the one it runs: the 50th waits here
    local rest = {}
    for i = 1, 50 do rest[i] = ex:submit(function() return i end) end
    assert.is_true(rest[50]:cancel())
    assert.is_true(rest[50]:cancelled())
    open()
    assert.is_true(first:result())
    assert.equal(1, rest[1]:result())
    assert.equal("CancelledError", error_of(rest[50].result, rest[50]).type)
  end)

  it("shuts down: waits, cancels on request, refuses new work", function()
    local ex = mpi.MPIPoolExecutor{max_workers = 1}
    local path, open = gate()
    local first = ex:submit(wait_for, path)
    -- sent to its rank (running), so not among what shutdown cancels
    while not first:running() do futures.sleep(0.001) end
    local later = {}
    for i = 1, 50 do later[i] = ex:submit(function() return i end) end
    ex:shutdown{wait = false, cancel_futures = true}
    assert.is_true(later[50]:cancelled())
    open()
    ex:shutdown()
    assert.is_true(first:result())
    assert.matches("state=shutdown", tostring(ex))
    local e = error_of(ex.submit, ex, print)
    assert.equal("RuntimeError", e.type)
    assert.matches("after shutdown", e.message)
    ex:shutdown() -- idempotent
  end)

  it("shares the ranks between executors, each with its own worker states", function()
    -- a's one worker and b's first go to different ranks: the one that
    -- serves fewer executors is chosen
    local a <close> = mpi.MPIPoolExecutor{max_workers = 1, initializer = function() kind = "a" end}
    local b <close> = mpi.MPIPoolExecutor{initializer = function() kind = "b" end}
    local path, open = gate()
    local busy = a:submit(wait_for, path) -- holds a rank until opened
    local fb = b:submit(function() return kind end)
    local fa = a:submit(function() return kind end)
    assert.equal("b", fb:result())
    open()
    assert.is_true(busy:result())
    assert.equal("a", fa:result())
  end)

  it("runs done callbacks in the caller's state", function()
    local ex <close> = mpi.MPIPoolExecutor()
    local f = ex:submit(function() return "v" end)
    local seen
    f:add_done_callback(function(g) seen = {g == f, g:result()} end)
    f:result()
    futures.poll()
    assert.same({true, "v"}, seen)
  end)

  it("mixes with thread and process futures in wait and as_completed", function()
    local ex <close> = mpi.MPIPoolExecutor()
    local tp <close> = futures.ThreadPoolExecutor(1)
    local pp <close> = futures.ProcessPoolExecutor(1)
    local fs = {
      ex:submit(function() return "mpi" end),
      tp:submit(function() return "thread" end),
      pp:submit(function() return "process" end),
    }
    local done, not_done = futures.wait(fs)
    assert.equal(3, #done)
    assert.equal(0, #not_done)
    local seen = {}
    for g in futures.as_completed(fs) do seen[g:result()] = true end
    assert.same({mpi = true, thread = true, process = true}, seen)
    local first = futures.wait({ex:submit(function() return 1 end)}, nil, futures.FIRST_COMPLETED)
    assert.equal(1, #first)
  end)

  it("runs the initializer in every rank's state", function()
    local ex <close> = mpi.MPIPoolExecutor{initializer = function(v) base = v end, initargs = {100}}
    assert.equal(101, ex:submit(function(x) return base + x end, 1):result())
  end)

  it("breaks with BrokenExecutor when an initializer fails", function()
    local ex <close> = mpi.MPIPoolExecutor{initializer = function() error("no init") end}
    local f = ex:submit(print)
    local e = error_of(f.result, f)
    assert.is_true(futures.BrokenExecutor:is(e))
    assert.equal("BrokenExecutor", e.type)
    assert.matches("initializer failed", e.message)
    assert.matches("state=broken", tostring(ex))
    assert.equal("BrokenExecutor", error_of(ex.submit, ex, print).type)
  end)

  it("refuses values that cannot leave the process", function()
    local ex <close> = mpi.MPIPoolExecutor()
    local e = error_of(ex.submit, ex, print, futures.Future())
    assert.equal("TransferError", e.type)
    assert.matches("cannot transfer argument #2", e.message)
  end)

  it("says what is wrong with its arguments", function()
    local cases = {
      {{max_workers = 3}, "bad argument #1 to '.-' %('max_workers' is more than the 2 worker ranks of the job%)"},
      {{max_workers = 0}, "'max_workers' must be greater than 0"},
      {{bogus = 1}, "unknown option 'bogus'"},
      {{initializer = 5}, "'initializer' must be a function"},
    }
    for _, c in ipairs(cases) do
      assert.matches(c[2], error_of(mpi.MPIPoolExecutor, c[1]))
    end
    local ex <close> = mpi.MPIPoolExecutor()
    assert.matches("function expected, got nil", error_of(ex.submit, ex, nil))
    assert.matches("MPIPoolExecutor expected", error_of(ex.submit, {}, print))
    assert.matches("under %-m concurrent.futures.mpi", error_of(mpi.MPICommExecutor).message)
  end)

  it("contains a task's os.exit in a child with isolate = true", function()
    local ex <close> = mpi.MPIPoolExecutor{isolate = true, max_workers = 1}
    local f = ex:submit(function() os.exit(3) end)
    local e = error_of(f.result, f)
    assert.equal("BrokenProcessPool", e.type)
    assert.matches("exited with status 3", e.message)
    -- the job goes on: the next task gets a fresh child
    assert.equal(42, ex:submit(function(x) return x * 2 end, 21):result())
    local g = ex:submit(function() error({v = 1}) end)
    assert.same({v = 1}, error_of(g.result, g))
    assert.matches("^rank 1 of 3 on ", g:traceback())
  end)
end)
