local support = require "support"
local futures = support.futures

-- Waits that can provably never end raise DeadlockError in the waiter.
-- Tasks learn of futures made after them through unbound "boxes".
describe("deadlocks", function()
  after_each(support.collect)

  it("a one-worker pool whose task submits to itself and waits", function()
    local ex <close> = futures.ThreadPoolExecutor{max_workers = 1, thread_name_prefix = "solo"}
    local f = ex:submit(function(pool)
      return pool:submit(function() return 1 end):result()
    end, ex)
    local err = support.error_of(f.result, f)
    assert.is_true(futures.DeadlockError:is(err))
    assert.matches("^worker 'solo_0' waits on <Future at 0x%x+ state=pending> queued on its own pool, which has no other worker$", err.message)
    -- the pool stays usable
    assert.equal(2, ex:submit(function() return 2 end):result())
  end)

  it("keeps the error's class when the waiter sent tables first", function()
    local ex <close> = futures.ThreadPoolExecutor(1)
    local f = ex:submit(function(pool)
      return pool:submit(function(a, b) return #a + #b end, {1, 2, 3}, {4, 5, 6}):result()
    end, ex)
    local err = support.error_of(f.result, f)
    assert.is_true(futures.DeadlockError:is(err), tostring(err))
  end)

  local function cycle(n)
    local ex <close> = futures.ThreadPoolExecutor(n)
    local boxes, started, fs = {}, {}, {}
    for i = 1, n do boxes[i], started[i] = futures.Future(), futures.Future() end
    for i = 1, n do
      fs[i] = ex:submit(function(box, s)
        s:set_result(true)
        return box:result():result()
      end, boxes[i], started[i])
    end
    for i = 1, n do started[i]:result() end -- all running: the cycle is real
    for i = 1, n do boxes[i]:set_result(fs[i % n + 1]) end
    local deadlocks = 0
    for i = 1, n do
      local err = support.error_of(fs[i].result, fs[i])
      assert.is_true(futures.DeadlockError:is(err), tostring(err))
      if err.message:find("waits, directly or through others", 1, true) then deadlocks = deadlocks + 1 end
    end
    assert.is_true(deadlocks >= 1)
    assert.equal("ok", ex:submit(function() return "ok" end):result())
  end

  it("a cycle of two running futures", function() cycle(2) end)
  it("a cycle of three running futures", function() cycle(3) end)

  it("a mixture across two pools", function()
    local p1 <close> = futures.ThreadPoolExecutor{max_workers = 1, thread_name_prefix = "p1"}
    local p2 <close> = futures.ThreadPoolExecutor{max_workers = 1, thread_name_prefix = "p2"}
    local f = p1:submit(function(a, b)
      -- on p2: submit back to p1 (whose only worker is this one) and wait
      return b:submit(function(back) return back:submit(function() return 3 end):result() end, a):result()
    end, p1, p2)
    local err = support.error_of(f.result, f)
    assert.is_true(futures.DeadlockError:is(err))
    -- whichever worker closes the cycle is told; the message names both
    assert.matches("p1", err.message)
    assert.matches("p2", err.message)
    assert.equal(4, p1:submit(function() return 4 end):result())
    assert.equal(5, p2:submit(function() return 5 end):result())
  end)

  it("counts futures.wait and as_completed like result()", function()
    local ex <close> = futures.ThreadPoolExecutor(1)
    local w = ex:submit(function(pool)
      local inner = pool:submit(function() return 1 end)
      return futures.wait({inner})
    end, ex)
    assert.is_true(futures.DeadlockError:is(support.error_of(w.result, w)))
    local a = ex:submit(function(pool)
      for g in futures.as_completed({pool:submit(function() return 1 end)}) do return g end
    end, ex)
    assert.is_true(futures.DeadlockError:is(support.error_of(a.result, a)))
  end)

  -- A wait that any one future may end is doomed when none of them can.
  for _, how in ipairs{"as_completed", "FIRST_COMPLETED", "FIRST_EXCEPTION"} do
    it("a wait for any of several futures, none of which can run (" .. how .. ")", function()
      local ex <close> = futures.ThreadPoolExecutor(1)
      local f = ex:submit(function(pool, mode)
        local fs = {pool:submit(math.max, 1, 2), pool:submit(math.max, 3, 4)}
        if mode == "as_completed" then
          for g in futures.as_completed(fs) do return g end
        end
        return futures.wait(fs, nil, mode)
      end, ex, how)
      local err = support.error_of(f.result, f)
      assert.is_true(futures.DeadlockError:is(err), tostring(err))
      assert.matches("waits on any of 2 futures, and none can ever finish: <Future at 0x%x+ state=pending> queued on its own pool", err.message)
    end)
  end

  it("settles many overlapping waits for any one future", function()
    -- every worker waits for the first of 20 subtasks queued behind them
    -- all; the check must stay polynomial (it once took minutes here)
    local ex = futures.ThreadPoolExecutor(6)
    local gate, started, fs = support.gate(), {}, {}
    for i = 1, 6 do
      started[i] = futures.Future()
      fs[i] = ex:submit(function(pool, g, s)
        s:set_result(true)
        g:result() -- all six workers busy: no subtask can start
        local sub = {}
        for j = 1, 20 do sub[j] = pool:submit(math.max, j, 1) end
        return futures.wait(sub, nil, futures.FIRST_COMPLETED)
      end, ex, gate, started[i])
    end
    for i = 1, 6 do started[i]:result() end
    gate:set_result(true)
    local deadlocks = 0
    for i = 1, 6 do
      local ok, err = pcall(fs[i].result, fs[i])
      if not ok then
        assert.is_true(futures.DeadlockError:is(err), tostring(err))
        deadlocks = deadlocks + 1
      end
    end
    assert.is_true(deadlocks >= 1)
    ex:shutdown()
  end)

  describe("no false alarms", function()
    it("for FIRST_EXCEPTION while another future can still fail", function()
      local a <close> = futures.ThreadPoolExecutor(1)
      local b <close> = futures.ThreadPoolExecutor(1)
      local entered, gate = futures.Future(), futures.Future()
      local x = b:submit(function(g) g:result() error("x failed", 0) end, gate)
      local f = a:submit(function(pool, x, s)
        local y = pool:submit(math.max, 1, 2) -- queued behind this task: stuck
        s:set_result(true)
        local done, not_done = futures.wait({x, y}, nil, futures.FIRST_EXCEPTION)
        return done[1] == x, not_done[1] == y
      end, a, x, entered)
      entered:result()
      gate:set_result(true)
      local ok, x_done, y_left = pcall(f.result, f)
      assert.is_true(ok, tostring(x_done))
      assert.is_true(x_done)
      assert.is_true(y_left)
    end)

    it("when the pool can start another worker", function()
      local ex <close> = futures.ThreadPoolExecutor(2)
      local f = ex:submit(function(pool) return pool:submit(function() return 1 end):result() + 1 end, ex)
      assert.equal(2, f:result())
    end)

    it("when the main thread waits on a queued future", function()
      local ex <close> = futures.ThreadPoolExecutor(1)
      local gate = support.gate()
      local blocker = ex:submit(function(g) return g:result() end, gate)
      local queued = ex:submit(function() return "q" end)
      assert.is_true(futures.TimeoutError:is(support.error_of(queued.result, queued, 0.01)))
      gate:set_result(1)
      assert.equal("q", queued:result())
      blocker:result()
    end)

    it("for waits with a timeout: they time out", function()
      local ex <close> = futures.ThreadPoolExecutor(1)
      local f = ex:submit(function(pool)
        local ok, err = pcall(function() return pool:submit(function() return 1 end):result(0.02) end)
        return err.type
      end, ex)
      assert.equal("TimeoutError", f:result())
    end)

    it("for a wait that a later set_result can finish", function()
      local ex <close> = futures.ThreadPoolExecutor(1)
      local box, started = futures.Future(), futures.Future()
      local f = ex:submit(function(b, s) s:set_result(true) return b:result() end, box, started)
      started:result()
      box:set_result("set later")
      assert.equal("set later", f:result())
    end)
  end)
end)
