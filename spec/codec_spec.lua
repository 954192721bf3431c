local support = require "support"
local futures = support.futures

describe("values between states", function()
  local ex
  setup(function() ex = futures.ThreadPoolExecutor(1) end)
  teardown(function() ex:shutdown() ex = nil support.collect() end)

  local function echo(...) return ex:submit(function(...) return ... end, ...):result() end

  it("round-trips scalars, keeping integers integers", function()
    local a, b, c, d, e, f, g = echo(nil, true, false, 42, 2^53, 1.5, -0.0)
    assert.is_nil(a) assert.is_true(b) assert.is_false(c)
    assert.equal("integer", math.type(d)) assert.equal(42, d)
    assert.equal("float", math.type(e))
    assert.equal(1.5, f)
    assert.equal(math.maxinteger, (echo(math.maxinteger)))
    assert.equal(math.mininteger, (echo(math.mininteger)))
    assert.equal("float", math.type((echo(3.0))))
    assert.is_true((echo(0/0)) ~= (echo(0/0))) -- NaN stays NaN
    assert.equal(math.huge, (echo(math.huge)))
  end)

  it("keeps trailing nils in argument and result counts", function()
    local n = ex:submit(function(...) return select("#", ...) end, 1, nil, nil):result()
    assert.equal(3, n)
    assert.equal(3, select("#", echo(1, nil, nil)))
  end)

  it("copies strings binary-safe, a 1 MB string included", function()
    local s = string.rep("\0\1\255abc", 200000)
    assert.equal(#s, #(echo(s)))
    assert.equal(s, (echo(s)))
    assert.equal("", (echo("")))
  end)

  it("copies nested tables with integer and float keys kept", function()
    local t = {1, 2, {x = {y = "z"}}, [1.5] = "f", [10] = "ten", [true] = "yes"}
    local r = echo(t)
    assert.same(t, r)
    assert.is_false(r == t) -- a copy
    assert.equal("f", r[1.5])
    assert.equal("integer", math.type(next({[10] = 1})))
  end)

  it("keeps shared references and cycles within one submit", function()
    local shared = {}
    local t = {a = shared, b = shared}
    t.self = t
    local r, again = echo(t, shared)
    assert.equal(r.a, r.b)
    assert.equal(r, r.self)
    assert.equal(r.a, again) -- a table passed twice arrives as one table
  end)

  it("copies Lua functions with their upvalues by value", function()
    local base = 10
    local add = function(x) return x + base end
    assert.equal(15, ex:submit(function(f) return f(5) end, add):result())
    local counter = 0
    local inc = function() counter = counter + 1 return counter end
    ex:submit(inc):result()
    assert.equal(0, counter) -- the worker changed its own copy
  end)

  it("rebinds _ENV to the worker's globals", function()
    ex:submit(function() mark = "worker" end):result()
    assert.is_nil(rawget(_G, "mark"))
    assert.equal("worker", ex:submit(function() return mark end):result())
  end)

  it("copies recursive local functions", function()
    local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
    assert.equal(55, ex:submit(fib, 10):result())
  end)

  it("sends C functions and module tables by name", function()
    assert.equal(9, ex:submit(math.max, 3, 9, 1):result())
    assert.equal(string, (echo(string)))
    local fmt = string.format
    assert.equal("x=1", ex:submit(function() return fmt("x=%d", 1) end):result())
    assert.equal(print, (echo(print)))
  end)

  it("sends metatables by name when reachable, else copies them", function()
    local obj = setmetatable({}, futures.TimeoutError)
    assert.equal(futures.TimeoutError, getmetatable((echo(obj))))
    local mt = {__index = {hello = function() return "hi" end}}
    local r = echo(setmetatable({}, mt))
    assert.equal("hi", r.hello())
  end)

  it("keeps error objects' classes across states", function()
    local f = ex:submit(function() error(futures.RuntimeError("inner")) end)
    local err = support.error_of(f.result, f)
    assert.is_true(futures.RuntimeError:is(err))
    assert.equal("RuntimeError: inner", tostring(err))
  end)

  describe("TransferError", function()
    local cases = {
      {"a coroutine argument", function() return ex:submit(print, 1, coroutine.create(print)) end,
       "cannot transfer argument #3: thread"},
      {"a nested userdata", function() return ex:submit(print, {conn = ex:map(print, {})}) end,
       "cannot transfer argument #2 (field 'conn'): userdata"},
      {"a deep path", function() return ex:submit(print, {a = {b = {ex:map(print, {})}}}) end,
       "cannot transfer argument #2 (field 'a.b[1]'): userdata"},
      {"an upvalue", function() local co = coroutine.create(print) return ex:submit(function() return co end) end,
       "cannot transfer argument #1 (upvalue 'co'): thread"},
      {"a C closure", function() return ex:submit(print, string.gmatch("a", "a")) end,
       "cannot transfer argument #2: C function not found in package.loaded"},
      {"a key", function() return ex:submit(print, {[coroutine.create(print)] = 1}) end,
       "cannot transfer argument #2 (a key): thread"},
    }
    for _, case in ipairs(cases) do
      it("names " .. case[1], function()
        local err = support.error_of(case[2])
        assert.is_true(futures.TransferError:is(err))
        assert.equal(case[3], err.message)
      end)
    end

    it("fails a task whose result cannot be copied", function()
      local f = ex:submit(function() return 1, coroutine.create(print) end)
      local err = support.error_of(f.result, f)
      assert.is_true(futures.TransferError:is(err))
      assert.equal("cannot transfer result #2: thread", err.message)
    end)

    it("refuses tables nested too deep without crashing", function()
      local t = {}
      for _ = 1, 300 do t = {t} end
      local err = support.error_of(ex.submit, ex, print, t)
      assert.is_true(futures.TransferError:is(err))
      assert.matches("nested too deep", err.message)
    end)
  end)
end)
