local support = require "support"
local futures = support.futures

describe("map", function()
  local ex
  before_each(function() ex = futures.ThreadPoolExecutor(3) end)
  after_each(function() ex:shutdown() ex = nil support.collect() end)

  it("yields i and the results in input order under out-of-order completion", function()
    local gates = {support.gate(), support.gate(), support.gate()}
    local it = ex:map(function(g, v) return g:result() + v end, gates, {10, 20, 30})
    gates[3]:set_result(3) gates[2]:set_result(2) gates[1]:set_result(1)
    local got = {}
    for i, v in it do got[#got + 1] = {i, v} end
    assert.same({{1, 11}, {2, 22}, {3, 33}}, got)
  end)

  it("stops at the shortest iterable and takes iterator functions", function()
    local function count(n) local i = 0 return function() i = i + 1 if i <= n then return i end end end
    local r = ex:map(function(a, b) return a * b end, count(5), {1, 1, 1}):collect()
    assert.same({1, 2, 3, n = 3}, r)
  end)

  it("keeps nil results and multiple returns", function()
    local seen = {}
    for i, a, b in ex:map(function(x) if x == 2 then return nil, "two" end return x end, {1, 2, 3}) do
      seen[i] = {a, b}
    end
    assert.same({{1}, {nil, "two"}, {3}}, seen)
  end)

  it("honours chunksize with every result in order", function()
    local input = {}
    for i = 1, 1000 do input[i] = i end
    for _, cs in ipairs{1, 7, 100, 1000, 5000} do
      local r = ex:map(function(x) return x * x end, input, {chunksize = cs}):collect()
      assert.equal(1000, r.n)
      for i = 1, 1000 do assert.equal(i * i, r[i]) end
    end
  end)

  -- One number or boolean is read in one step (bindings/outcome.c), any
  -- other outcome by the decoder: in one chunk they alternate.
  it("mixes one-scalar results with every other kind in one chunk", function()
    local function f(x)
      local k = x % 8
      if k == 0 then return x elseif k == 1 then return x + 0.5
      elseif k == 2 then return x % 3 == 0 elseif k == 3 then return "s" .. x
      elseif k == 4 then return {x} elseif k == 5 then return x, x
      elseif k == 6 then return nil end
      return 2^40 // 1 + x
    end
    local input = {}
    for i = 1, 200 do input[i] = i end
    for _, pool in ipairs{ex, futures.ProcessPoolExecutor(1)} do
      local n = 0
      for i, a, b in pool:map(f, input, {chunksize = 64}) do
        n = n + 1
        local ea, eb = f(i)
        if type(ea) == "table" then assert.same(ea, a) else assert.equal(ea, a) end
        assert.equal(math.type(ea), math.type(a))
        assert.equal(eb, b)
      end
      assert.equal(200, n)
      pool:shutdown()
    end
  end)

  it("raises a task error at its turn and then goes on", function()
    local it = ex:map(function(x) if x == 2 then error("two", 0) end return x end, {1, 2, 3}, {chunksize = 2})
    local i, v = it()
    assert.equal(1, v)
    assert.equal("two", support.error_of(it))
    i, v = it()
    assert.equal(3, i) assert.equal(3, v)
    assert.is_nil(it())
  end)

  it("goes on with the next call of a chunk after a result that cannot be decoded here", function()
    -- The first call returns a module of its worker that the main state
    -- cannot load: its step raises, and the next step must give the next
    -- call's result, not the same undecodable one again.
    local it = ex:map(function(x)
      if x == 1 then
        package.loaded["luafutures_spec_workeronly"] = {}
        return package.loaded["luafutures_spec_workeronly"]
      end
      return x * 10
    end, {1, 2, 3}, {chunksize = 3})
    local ok, err = pcall(it)
    assert.is_false(ok)
    assert.matches("luafutures_spec_workeronly", tostring(err))
    local i, v = it()
    assert.equal(2, i) assert.equal(20, v)
    i, v = it()
    assert.equal(3, i) assert.equal(30, v)
    assert.is_nil(it())
  end)

  it("collect raises the first task error", function()
    local it = ex:map(function(x) error({at = x}) end, {5, 6})
    assert.same({at = 5}, support.error_of(it.collect, it))
  end)

  it("times out from the call, then is finished with the rest cancelled", function()
    local one <close> = futures.ThreadPoolExecutor(1)
    local gate = support.gate()
    local it = one:map(function(g) return g:result() end, {gate, gate, gate}, {timeout = 0.05})
    local err = support.error_of(it)
    assert.is_true(futures.TimeoutError:is(err))
    assert.is_nil(it())
    gate:set_result(1)
  end)

  it("close cancels what has not started", function()
    local one <close> = futures.ThreadPoolExecutor(1)
    local gate, started = support.gate(), support.gate()
    local ran = futures.Future()
    local first = one:submit(function(g, s) s:set_result(true) return g:result() end, gate, started)
    started:result()
    do
      local it <close> = one:map(function(r) r:set_result("ran") end, {ran})
    end
    gate:set_result(1)
    first:result()
    one:shutdown()
    assert.is_false(ran:done())
  end)

  it("a finished or closed iterator returns one nil", function()
    local it = ex:map(function(x) return x end, {1})
    assert.same({1, 1}, {it()})
    assert.equal(1, select("#", it()))
    local closed = ex:map(function(x) return x end, {1})
    closed:close()
    assert.equal(1, select("#", closed()))
  end)

  it("runs every call of an iterator dropped unread", function()
    -- CPython's test_map_submits_without_iteration
    local one = futures.ThreadPoolExecutor(1)
    local boxes = {}
    for i = 1, 10 do boxes[i] = futures.Future() end
    one:map(function(b) b:set_result(true) end, boxes)
    support.collect()
    one:shutdown(true)
    for i = 1, 10 do assert.is_true(boxes[i]:done(), "call " .. i) end
  end)

  it("cancels the unstarted calls of an iterator dropped part-way", function()
    -- Python's map generator cancels what is left when it is closed or
    -- collected after its first step.
    local one = futures.ThreadPoolExecutor(1)
    local started, gate = futures.Future(), futures.Future()
    local boxes = {}
    for i = 1, 4 do boxes[i] = futures.Future() end
    do
      local it = one:map(function(i)
        if i == 2 then
          started:set_result(true)
          gate:result()
        end
        boxes[i]:set_result(true)
        return i
      end, {1, 2, 3, 4})
      assert.equal(1, (select(2, it())))
      started:result()  -- call 2 runs, calls 3 and 4 wait in the queue
    end
    support.collect()
    gate:set_result(true)
    one:shutdown(true)
    assert.same({true, true, false, false},
                {boxes[1]:done(), boxes[2]:done(), boxes[3]:done(), boxes[4]:done()})
  end)

  it("a trailing {} is an empty iterable", function()
    assert.same({n = 0}, ex:map(function(a, b) return a end, {1, 2}, {}):collect())
  end)

  it("a trailing table is options when it has a string key and no [1]", function()
    assert.same({1, 2, n = 2}, ex:map(function(a) return a end, {1, 2}, {chunksize = 2}):collect())
    assert.same({1, 2, n = 2}, ex:map(function(a) return a end, {1, 2}, {timeout = 60}):collect())
    -- table.pack()'s n is a length: {n = 0} is the empty sequence
    assert.same({n = 0}, ex:map(function(a, b) return a end, {1, 2}, table.pack()):collect())
    assert.same({n = 0}, ex:map(function(a) return a end, table.pack()):collect())
    -- a list with fields of its own is still a list
    assert.same({1, 2, n = 2}, ex:map(function(a) return a end, {1, 2, name = "xs"}):collect())
  end)

  it("does not keep the executor alive", function()
    local weak = setmetatable({}, {__mode = "v"})
    local it
    do
      local e = futures.ThreadPoolExecutor(1)
      weak.e = e
      it = e:map(function(x) return x end, {1, 2})
    end
    support.collect()
    assert.is_nil(weak.e)
    assert.same({1, 2, n = 2}, it:collect())
  end)
end)
