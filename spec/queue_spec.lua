local support = require "support"
local futures = support.futures

-- Returns once n calls are asleep in q (put, get or join): the state the
-- next step needs, observed rather than slept for.
local function until_waiting(q, n)
  while not tostring(q):find("waiting=" .. n, 1, true) do futures.sleep(0.001) end
end

local function is(class, err)
  assert(class:is(err), "expected " .. class.__name .. ", got " .. tostring(err))
end

describe("Queue", function()
  local ex
  before_each(function() ex = futures.ThreadPoolExecutor(8) end)
  after_each(function() ex:shutdown() ex = nil support.collect() end)

  describe("in one state", function()
    it("is FIFO, and nil is a value", function()
      local q = futures.Queue()
      q:put(1) q:put(nil) q:put("x") q:put(false)
      assert.equal(4, q:qsize())
      assert.equal(1, q:get())
      assert.equal(0 + 1, select("#", q:get())) -- the nil, as one value
      assert.equal("x", q:get())
      assert.equal(false, q:get())
      assert.is_true(q:empty())
    end)

    it("copies values in and out, keeping shared references", function()
      local q = futures.Queue()
      local t = {n = 1}
      q:put({t, t})
      t.n = 2
      local v = q:get()
      assert.equal(1, v[1].n)
      assert.equal(v[1], v[2])
    end)

    it("reports its size, emptiness and fullness", function()
      local q = futures.Queue(2)
      assert.is_true(q:empty()) assert.is_false(q:full())
      q:put("a") q:put("b")
      assert.equal(2, q:qsize()) assert.is_true(q:full())
      local u = futures.Queue(0)
      for i = 1, 100 do u:put(i) end
      assert.is_false(u:full())
      assert.matches("^<Queue at 0x%x+ qsize=100 maxsize=0 waiting=0>$", tostring(u))
    end)

    it("raises QueueEmpty and QueueFull, below Error, never TimeoutError", function()
      local q = futures.Queue(1)
      local e = support.error_of(q.get_nowait, q)
      is(futures.QueueEmpty, e) is(futures.Error, e)
      assert.is_false(futures.TimeoutError:is(e))
      assert.equal("QueueEmpty: queue is empty", tostring(e))
      q:put_nowait(1)
      e = support.error_of(q.put_nowait, q, 2)
      is(futures.QueueFull, e) is(futures.Error, e)
      is(futures.QueueEmpty, support.error_of(futures.Queue().get, futures.Queue(), 0))
    end)

    it("gives up after a timeout", function()
      local q = futures.Queue(1)
      local t0 = futures.now()
      is(futures.QueueEmpty, support.error_of(q.get, q, 0.02))
      assert.is_true(futures.now() - t0 >= 0.02)
      q:put(1, 0.02)
      is(futures.QueueFull, support.error_of(q.put, q, 2, 0.02))
      assert.equal(1, q:get(0.02))
    end)

    it("refuses task_done beyond the items put", function()
      local q = futures.Queue()
      q:put(1)
      q:get()
      q:task_done()
      local e = support.error_of(q.task_done, q)
      is(futures.InvalidStateError, e)
      assert.matches("called too many times", e.message)
      q:join() -- nothing unfinished: returns at once
    end)

    it("after shutdown: puts fail, items left can be taken, then gets fail", function()
      local q = futures.Queue()
      q:put(1) q:put(2)
      q:shutdown()
      is(futures.QueueShutDown, support.error_of(q.put, q, 3))
      assert.equal(1, q:get()) assert.equal(2, q:get())
      local e = support.error_of(q.get, q)
      is(futures.QueueShutDown, e) is(futures.Error, e)
      q:shutdown() -- idempotent
      assert.matches(" shutdown>$", tostring(q))
    end)

    it("immediate shutdown drops the items and releases join", function()
      local q = futures.Queue()
      for i = 1, 3 do q:put(i) end
      q:shutdown(true)
      assert.equal(0, q:qsize())
      is(futures.QueueShutDown, support.error_of(q.get_nowait, q))
      q:join()
    end)

    it("iter yields the items and ends at shutdown", function()
      local q = futures.Queue()
      for i = 1, 3 do q:put(i * 10) end
      q:shutdown()
      local got = {}
      for v in q:iter() do got[#got + 1] = v end
      assert.same({10, 20, 30}, got)
    end)

    local misuse = {
      {function() futures.Queue(-1) end, "bad argument #1 to 'Queue' ('maxsize' must not be negative)"},
      {function() futures.Queue("x") end, "bad argument #1 to 'Queue' (integer expected, got string)"},
      {function() futures.Queue(1.5) end, "bad argument #1 to 'Queue' (number has no integer representation)"},
      {function(q) q:get(-1) end, "bad argument #1 to 'get' (timeout must be non-negative)"},
      {function(q) q:put() end, "bad argument #1 to 'put' (value expected)"},
      {function(q) q:put(1, -1) end, "bad argument #2 to 'put' (timeout must be non-negative)"},
      {function(q) q:put(1, "x") end, "bad argument #2 to 'put' (number expected, got string)"},
      {function(q) q.get(5) end, "bad argument #1 to 'get' (Queue expected, got number)"},
      {function(q) q.qsize({}) end, "bad argument #1 to 'qsize' (Queue expected, got table)"},
    }
    for i, case in ipairs(misuse) do
      it("misuse " .. i .. ": " .. case[2], function()
        local ok, err = pcall(case[1], futures.Queue())
        assert.is_false(ok)
        assert.equal(case[2], (err:gsub("^[^:]+:%d+: ", "")))
      end)
    end

    it("a value that cannot be copied is a TransferError naming it", function()
      local q = futures.Queue()
      local e = support.error_of(q.put, q, {conn = coroutine.create(print)})
      is(futures.TransferError, e)
      assert.equal("cannot transfer argument #1 (field 'conn'): thread", e.message)
      assert.equal(0, q:qsize())
    end)
  end)

  describe("between states", function()
    it("moves every item exactly once among many producers and consumers", function()
      local q = futures.Queue(16)
      local per, nprod = 500, 4
      local consumers = {}
      for c = 1, 4 do
        consumers[c] = ex:submit(function(q)
          local seen = {}
          for v in q:iter() do
            seen[#seen + 1] = v
            q:task_done()
          end
          return seen
        end, q)
      end
      local producers = {}
      for p = 1, nprod do
        producers[p] = ex:submit(function(q, p, per)
          for i = 1, per do q:put(p * 100000 + i) end
        end, q, p, per)
      end
      futures.wait(producers)
      q:join() -- every item put has been marked done
      q:shutdown()
      local count, total = {}, 0
      for _, f in ipairs(consumers) do
        local last = {}
        for _, v in ipairs(f:result()) do
          count[v] = (count[v] or 0) + 1
          total = total + 1
          local p = v // 100000
          assert.is_true((last[p] or 0) < v) -- each producer's order kept
          last[p] = v
        end
      end
      assert.equal(per * nprod, total)
      for p = 1, nprod do
        for i = 1, per do assert.equal(1, count[p * 100000 + i]) end
      end
    end)

    it("a bounded put blocks until a get makes room", function()
      local q = futures.Queue(1)
      local f = ex:submit(function(q) q:put("a") q:put("b") return "put both" end, q)
      until_waiting(q, 1)
      assert.is_false(f:done())
      assert.equal(1, q:qsize())
      assert.equal("a", q:get())
      assert.equal("put both", f:result())
      assert.equal("b", q:get())
    end)

    it("join waits for the last task_done", function()
      local q = futures.Queue()
      for i = 1, 3 do q:put(i) end
      local f = ex:submit(function(q) q:join() return q:qsize() end, q)
      for _ = 1, 3 do q:get() end
      q:task_done() q:task_done()
      until_waiting(q, 1)
      assert.is_false(f:done())
      q:task_done()
      assert.equal(0, f:result())
    end)

    it("shutdown wakes gets and puts blocked in workers", function()
      local empty, full = futures.Queue(), futures.Queue(1)
      full:put(0)
      local gets, puts = {}, {}
      for i = 1, 3 do
        gets[i] = ex:submit(function(q) return pcall(q.get, q) end, empty)
        puts[i] = ex:submit(function(q) return pcall(q.put, q, 1) end, full)
      end
      until_waiting(empty, 3)
      until_waiting(full, 3)
      empty:shutdown() full:shutdown()
      for i = 1, 3 do
        local ok, e = gets[i]:result()
        assert.is_false(ok) is(futures.QueueShutDown, e)
        ok, e = puts[i]:result()
        assert.is_false(ok) is(futures.QueueShutDown, e)
      end
    end)

    it("shutdown from a worker wakes a get blocked in the main state", function()
      local q = futures.Queue()
      ex:submit(function(q)
        while not tostring(q):find("waiting=1", 1, true) do futures.sleep(0.001) end
        q:shutdown()
      end, q)
      is(futures.QueueShutDown, support.error_of(q.get, q))
    end)

    it("shutdown from a worker wakes a put blocked in the main state", function()
      local q = futures.Queue(1)
      q:put("first")
      ex:submit(function(q)
        while not tostring(q):find("waiting=1", 1, true) do futures.sleep(0.001) end
        q:shutdown()
      end, q)
      is(futures.QueueShutDown, support.error_of(q.put, q, "second"))
      assert.equal("first", q:get()) -- what was queued before stays
    end)

    it("immediate shutdown releases a join blocked in a worker", function()
      local q = futures.Queue()
      for i = 1, 3 do q:put(i) end
      local f = ex:submit(function(q) q:join() return "joined" end, q)
      until_waiting(q, 1)
      assert.is_false(f:done())
      q:shutdown(true)
      assert.equal("joined", f:result())
    end)

    it("immediate shutdown drops items a worker would have taken", function()
      local q = futures.Queue()
      for i = 1, 5 do q:put(i) end
      q:shutdown(true)
      local ok, e = ex:submit(function(q) return pcall(q.get, q) end, q):result()
      assert.is_false(ok) is(futures.QueueShutDown, e)
    end)

    it("runs the state's callbacks while it blocks in get", function()
      local q, gate = futures.Queue(), support.gate()
      local f = ex:submit(function(g) return g:result() end, gate)
      f:add_done_callback(function() q:put("from the callback") end)
      ex:submit(function(q, g)
        while not tostring(q):find("waiting=1", 1, true) do futures.sleep(0.001) end
        g:set_result(true)
      end, q, gate)
      assert.equal("from the callback", q:get())
    end)

    it("stays == when it travels and returns", function()
      local q = futures.Queue()
      local back, t = ex:submit(function(q) return q, {inner = q} end, q):result()
      assert.equal(q, back)
      assert.equal(q, t.inner)
      assert.is_true(ex:submit(function(a, b) return a == b end, q, q):result())
    end)

    it("outlives the executor whose worker made it", function()
      local inner = futures.ThreadPoolExecutor(1)
      local q = inner:submit(function()
        local q = futures.Queue()
        q:put("made in a worker") q:put({k = 2})
        return q
      end):result()
      inner:shutdown()
      inner = nil
      support.collect()
      assert.equal("made in a worker", q:get())
      assert.equal(2, q:get().k)
    end)

    it("cannot go to a process worker", function()
      local pex <close> = futures.ProcessPoolExecutor(1)
      local e = support.error_of(pex.submit, pex, function(q) return q end, futures.Queue())
      is(futures.TransferError, e)
      assert.equal("cannot transfer argument #2: Queue (a handle cannot leave its process)",
                   e.message)
    end)
  end)

  describe("deadlocks", function()
    it("a worker's get on a queue only it holds raises DeadlockError", function()
      local ok, e = ex:submit(function()
        local q = futures.Queue()
        return pcall(q.get, q)
      end):result()
      assert.is_false(ok)
      is(futures.DeadlockError, e)
      assert.matches("no other state holds", e.message)
    end)

    it("raises once the last other holder lets go", function()
      local q = futures.Queue()
      local f = ex:submit(function(q) return pcall(q.get, q) end, q)
      until_waiting(q, 1)
      q = nil
      support.collect()
      local ok, e = f:result()
      assert.is_false(ok)
      is(futures.DeadlockError, e)
    end)

    it("leaves a get with a timeout to time out", function()
      local ok, e = ex:submit(function()
        local q = futures.Queue()
        return pcall(q.get, q, 0.01)
      end):result()
      assert.is_false(ok)
      is(futures.QueueEmpty, e)
    end)

    it("is not raised while another state can still put", function()
      local q = futures.Queue()
      local f = ex:submit(function(q) return q:get() end, q)
      until_waiting(q, 1)
      q:put("late")
      assert.equal("late", f:result())
    end)
  end)
end)
