local support = require "support"
local futures = support.futures

describe("wait and as_completed", function()
  local ex
  before_each(function() ex = futures.ThreadPoolExecutor(4) end)
  after_each(function() ex:shutdown() ex = nil support.collect() end)

  local function blocked(gate) return ex:submit(function(g) return g:result() end, gate) end

  describe("wait", function()
    it("returns two empty arrays for no futures", function()
      local done, not_done = futures.wait({})
      assert.same({}, done) assert.same({}, not_done)
    end)

    it("ALL_COMPLETED waits for all, in the order of fs, duplicates once", function()
      local a = ex:submit(function() return 1 end)
      local b = ex:submit(function() return 2 end)
      local done, not_done = futures.wait({b, a, b})
      assert.same({b, a}, done)
      assert.same({}, not_done)
    end)

    it("FIRST_COMPLETED returns as soon as one is done", function()
      local gate = support.gate()
      local slow = blocked(gate)
      local fast = ex:submit(function() return 1 end)
      local done, not_done = futures.wait({slow, fast}, nil, futures.FIRST_COMPLETED)
      assert.same({fast}, done)
      assert.same({slow}, not_done)
      gate:set_result(1)
    end)

    it("FIRST_EXCEPTION returns at the first error", function()
      local gate = support.gate()
      local slow = blocked(gate)
      local bad = ex:submit(function() error("x") end)
      local done, not_done = futures.wait({slow, bad}, {return_when = futures.FIRST_EXCEPTION})
      assert.same({bad}, done)
      assert.same({slow}, not_done)
      gate:set_result(1)
    end)

    it("FIRST_EXCEPTION without errors waits for all", function()
      local done, not_done = futures.wait({ex:submit(print), ex:submit(print)}, nil, "FIRST_EXCEPTION")
      assert.equal(2, #done) assert.equal(0, #not_done)
    end)

    it("a timeout returns what is done so far", function()
      local gate = support.gate()
      local slow = blocked(gate)
      local fast = ex:submit(function() return 1 end)
      fast:result()
      local done, not_done = futures.wait({slow, fast}, 0.01)
      assert.same({fast}, done)
      assert.same({slow}, not_done)
      gate:set_result(1)
    end)

    it("takes a table keyed by futures", function()
      local a, b = ex:submit(function() return "a" end), ex:submit(function() return "b" end)
      local done = futures.wait({[a] = "url a", [b] = "url b"})
      assert.equal(2, #done)
    end)

    it("works across two executors and unbound futures", function()
      local other <close> = futures.ThreadPoolExecutor(1)
      local u = futures.Future()
      local a, b = ex:submit(function() return 1 end), other:submit(function() return 2 end)
      u:set_result(3)
      local done = futures.wait({a, b, u})
      assert.same({a, b, u}, done)
    end)
  end)

  describe("as_completed", function()
    it("yields done futures first, then in completion order", function()
      local g1, g2 = support.gate(), support.gate()
      local first = blocked(g1)
      local second = blocked(g2)
      local ready = ex:submit(function() return 0 end)
      ready:result()
      local order = {}
      for f in futures.as_completed({first, second, ready}) do
        order[#order + 1] = f
        if f == ready then g2:set_result(2) end
        if f == second then g1:set_result(1) end
      end
      assert.same({ready, second, first}, order)
    end)

    it("returns one nil at the end", function()
      local f = ex:submit(function() return 0 end)
      local next_f = futures.as_completed({f})
      assert.equal(f, next_f())
      assert.equal(1, select("#", next_f()))
      assert.equal(1, select("#", next_f()))
    end)

    it("yields duplicates once and hands back the caller's objects", function()
      local a = ex:submit(function() return 1 end)
      local map = {[a] = "x"}
      local n = 0
      for f in futures.as_completed({a, a, a}) do
        n = n + 1
        assert.equal("x", map[f])
      end
      assert.equal(1, n)
    end)

    it("takes a table keyed by futures, from two executors", function()
      local other <close> = futures.ThreadPoolExecutor(1)
      local fs = {[ex:submit(function() return 1 end)] = 1, [other:submit(function() return 2 end)] = 2}
      local sum = 0
      for f in futures.as_completed(fs) do sum = sum + fs[f] assert.equal(fs[f], f:result()) end
      assert.equal(3, sum)
    end)

    it("raises TimeoutError naming how many are unfinished", function()
      local gate = support.gate()
      local fs = {blocked(gate), ex:submit(function() return 1 end)}
      local got = 0
      local ok, err = pcall(function()
        for _ in futures.as_completed(fs, 0.05) do got = got + 1 end
      end)
      assert.is_false(ok)
      assert.is_true(futures.TimeoutError:is(err))
      assert.matches("1 %(of 2%) futures unfinished", err.message)
      assert.equal(1, got)
      gate:set_result(1)
    end)

    it("keeps no reference to a future it has yielded", function()
      local weak = setmetatable({}, {__mode = "k"})
      local it = futures.as_completed({ex:submit(function() return 1 end)})
      local f = it()
      weak[f] = true
      f = nil
      support.collect()
      assert.is_nil(next(weak))
      assert.is_nil(it())
    end)
  end)
end)
