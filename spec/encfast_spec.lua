-- submit's short way (bindings/encfast.c) writes a task's bytes itself when
-- the function is the one submitted last and every upvalue and argument is
-- a scalar. The first submit of a function takes the encoder's full way,
-- the next ones the short way: each case here submits the same function
-- value several times and asserts what the worker saw, so both ways must
-- write the same bytes.
local support = require "support"
local futures = support.futures

describe("submit's short way", function()
  local ex
  setup(function() ex = futures.ThreadPoolExecutor(1) end)
  teardown(function() ex:shutdown() ex = nil support.collect() end)

  -- Submits fn with the arguments three times; the three outcomes, packed.
  local function thrice(fn, ...)
    local out = {}
    for i = 1, 3 do out[i] = table.pack(ex:submit(fn, ...):result()) end
    return out
  end

  local function describe_values(t)
    local parts = {}
    for i = 1, t.n do
      local v = t[i]
      parts[i] = math.type(v) and (math.type(v) .. ":" .. string.format("%q", v))
                 or type(v) .. ":" .. tostring(v)
    end
    return table.concat(parts, ",")
  end

  it("passes every kind of scalar argument, integers staying integers", function()
    local echo = function(...) return ... end
    local s255 = string.rep("x", 255)
    local args = table.pack(nil, true, false, 0, -1, 2^31 - 1, -2^31, 2^31,
                            math.maxinteger, math.mininteger, 3.0, 1.5, -0.0,
                            math.huge, "", "a\0b")
    local want = describe_values(args)
    for _, got in ipairs(thrice(echo, table.unpack(args, 1, args.n))) do
      assert.equal(want, describe_values(got))
    end
    local got = thrice(echo, s255, s255)
    assert.equal(s255, got[3][1])
    assert.equal(2, got[3].n)
    local nan = thrice(echo, 0 / 0)[3][1]
    assert.is_true(nan ~= nan)
  end)

  it("keeps the count of arguments, trailing nils and none at all", function()
    local count = function(...) return select("#", ...) end
    assert.same({3, 3, 3}, {ex:submit(count, 1, nil, nil):result(),
                            ex:submit(count, 1, nil, nil):result(),
                            ex:submit(count, 1, nil, nil):result()})
    assert.equal(0, ex:submit(count):result())
    assert.equal(0, ex:submit(count):result())
  end)

  it("takes the full way for what does not fit, with the same results", function()
    local sum = function(...)
      local n = 0
      for i = 1, select("#", ...) do n = n + (select(i, ...)) end
      return n
    end
    local many = {}
    for i = 1, 100 do many[i] = i end
    for _, got in ipairs(thrice(sum, table.unpack(many))) do
      assert.equal(5050, got[1])
    end
    local long = string.rep("y", 300)
    local len = function(s) return #s end
    for _, got in ipairs(thrice(len, long)) do assert.equal(300, got[1]) end
    local first = function(t) return t[1] end
    for _, got in ipairs(thrice(first, {7})) do assert.equal(7, got[1]) end
  end)

  it("sends a closure's scalar upvalues and resolves _ENV", function()
    local none, yes, no, small, big, flt, str = nil, true, false, 7, 2^40, 0.25, "up"
    local fn = function(x)
      return none, yes, no, small, big, flt, str, math.type(x), type(print)
    end
    local want = "nil:nil,boolean:true,boolean:false,integer:7,float:0x1p+40," ..
                 "float:0x1p-2,string:up,string:integer,string:function"
    for _, got in ipairs(thrice(fn, 1)) do
      assert.equal(want, describe_values(got))
    end
  end)

  it("sees an upvalue's new value on the next submit", function()
    local n = 1
    local get = function() return n end
    local seen = {}
    for i = 1, 4 do
      n = i * 10
      seen[i] = ex:submit(get):result()
    end
    assert.same({10, 20, 30, 40}, seen)
  end)

  it("takes the full way for an upvalue that is not a scalar", function()
    local t = {1, 2, 3}
    local count = function() return #t end
    for _, got in ipairs(thrice(count)) do assert.equal(3, got[1]) end
    local self_ref
    self_ref = function(k) if k == 0 then return "done" end return self_ref(k - 1) end
    for _, got in ipairs(thrice(self_ref, 3)) do assert.equal("done", got[1]) end
  end)

  it("alternates functions without mixing them up", function()
    local a = function(x) return "a" .. x end
    local b = function(x) return "b" .. x end
    local got = {}
    for i = 1, 6 do
      got[i] = ex:submit(i % 2 == 1 and a or b, i):result()
    end
    assert.same({"a1", "b2", "a3", "b4", "a5", "b6"}, got)
  end)

  -- A submit takes its references to the function's bytecode a few hundred
  -- at a time and gives back the unused ones when another function comes
  -- or the state closes (bindings/blob.c): the bytecode must outlive every
  -- task that holds it, and no more (the sanitizer builds see a leak or a
  -- use after free).
  it("keeps a function's bytecode for every pending task, past the references taken ahead", function()
    local gate = futures.Queue()
    local f = function(x) if x == 1 then gate:get() end return x * 2 end
    local fs = {}
    for i = 1, 700 do fs[i] = ex:submit(f, i) end
    -- Another function switches this state's last-function cache and
    -- gives back the references taken ahead; any executor does it, and a
    -- second one keeps the blocked worker out of the way.
    local ex2 <close> = futures.ThreadPoolExecutor(1)
    assert.equal(-5, ex2:submit(function(x) return -x end, 5):result())
    ex2:shutdown()
    f = nil
    support.collect()
    gate:put(true)
    for i = 1, 700 do assert.equal(i * 2, fs[i]:result()) end
  end)

  it("gives back the references a worker state took ahead when it closes", function()
    local outer <close> = futures.ThreadPoolExecutor(1)
    local got = outer:submit(function()
      local fut = require "concurrent.futures"
      local inner <close> = fut.ThreadPoolExecutor(1)
      local inc = function(x) return x + 1 end
      local total = 0
      for i = 1, 300 do total = total + inner:submit(inc, i):result() end
      return total
    end):result()
    assert.equal(300 * 301 // 2 + 300, got)
    outer:shutdown()
  end)

  it("is used by a process pool's executor only through the full way", function()
    local px <close> = futures.ProcessPoolExecutor(1)
    local inc = function(x) return x + 1 end
    for i = 1, 3 do assert.equal(i + 1, px:submit(inc, i):result()) end
  end)
end)
