-- Closures with upvalues in thread workers: the worker loads a function's
-- prototype once and makes a new closure of it per task (closure.c), so
-- every task must still see its own upvalues, as the submitter gave them.
local support = require "support"
local futures = support.futures

describe("closures sent to thread workers", function()
  local ex
  before_each(function() ex = futures.ThreadPoolExecutor(1) end)
  after_each(function() ex:shutdown() ex = nil support.collect() end)

  it("gives each task fresh upvalues, whatever the last task did to them", function()
    local n = 0
    local function bump() n = n + 1; return n end
    local got = {}
    for i = 1, 3 do got[i] = ex:submit(bump):result() end
    assert.same({1, 1, 1}, got)
    n = 10
    assert.equal(11, ex:submit(bump):result())
  end)

  it("sees the upvalue values of each submit", function()
    local fs = {}
    for i = 1, 50 do
      local k = i
      fs[i] = ex:submit(function(x) return x + k end, 100)
    end
    for i = 1, 50 do assert.equal(100 + i, fs[i]:result()) end
  end)

  it("keeps a recursive local function, nested closures and _ENV", function()
    local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end
    assert.equal(3628800, ex:submit(fact, 10):result())
    local a, b = 2, 3
    local function outer()
      local function inner() return a * b end
      return inner() + #string.rep("x", a)
    end
    assert.equal(8, ex:submit(outer):result())
  end)

  it("keeps the source and line in a task's error", function()
    local k = "boom"
    local line = debug.getinfo(1, "l").currentline + 1
    local function fail() error(k) end
    local err = support.error_of(function() return ex:submit(fail):result() end)
    assert.matches("closure_spec.lua:" .. line .. ": boom", tostring(err), 1, true)
  end)

  it("handles 200 upvalues, and more than that too", function()
    local src = {}
    for _, n in ipairs({200, 201}) do
      src = {"local "}
      for i = 1, n do src[#src + 1] = (i > 1 and "," or "") .. "u" .. i end
      src[#src + 1] = " = "
      for i = 1, n do src[#src + 1] = (i > 1 and "," or "") .. i end
      src[#src + 1] = "\nreturn function() return u1 + u" .. n .. " end"
      -- 201 locals do not compile in one function: nest the last one.
      if n > 200 then
        src = {"local u201 = 201\nreturn (function() local "}
        for i = 1, 200 do src[#src + 1] = (i > 1 and "," or "") .. "u" .. i end
        src[#src + 1] = " = "
        for i = 1, 200 do src[#src + 1] = (i > 1 and "," or "") .. i end
        src[#src + 1] = "\nreturn function() return u1 + u200 + u201 + 0*("
        for i = 2, 199 do src[#src + 1] = (i > 2 and "+" or "") .. "u" .. i end
        src[#src + 1] = ") end end)()"
      end
      local f = assert(load(table.concat(src)))()
      assert.equal(f(), ex:submit(f):result())
      assert.equal(f(), ex:submit(f):result())
    end
  end)

  it("keeps shared references past the encoder's first few", function()
    local shared = {v = 1}
    local t = {}
    for i = 1, 300 do t[i] = {shared, {i}} end
    t.self = t
    local ok = ex:submit(function(v)
      if v.self ~= v then return false end
      for i = 1, 300 do
        if v[i][1] ~= v[1][1] or v[i][2][1] ~= i then return false end
      end
      return true
    end, t):result()
    assert.is_true(ok)
  end)
end)
