local support = require "support"
local futures = support.futures

describe("error classes", function()
  local tree = {
    TimeoutError = "Error", CancelledError = "Error", InvalidStateError = "Error",
    RuntimeError = "Error", TransferError = "Error", DeadlockError = "Error",
    BrokenExecutor = "Error", BrokenThreadPool = "BrokenExecutor",
    BrokenProcessPool = "BrokenExecutor",
  }

  it("inherit as the contract says", function()
    for name, base in pairs(tree) do
      local e = futures[name]("m")
      assert.is_true(futures[name]:is(e), name)
      assert.is_true(futures[base]:is(e), name .. " is a " .. base)
      assert.is_true(futures.Error:is(e))
      assert.equal(name, e.type)
    end
    assert.is_true(futures.BrokenExecutor:is(futures.BrokenProcessPool("x")))
    assert.is_false(futures.BrokenThreadPool:is(futures.BrokenProcessPool("x")))
    assert.is_false(futures.TimeoutError:is(futures.Error("x")))
  end)

  it("print as exactly Type: message", function()
    assert.equal("TimeoutError: too slow", tostring(futures.TimeoutError("too slow")))
    assert.equal("Error: ", tostring(futures.Error()))
  end)

  it("is() is false, never an error, for any other value", function()
    for _, v in ipairs{false, 0, "TimeoutError", {}, {type = "TimeoutError"}, print,
                       coroutine.create(print), io.stdout, setmetatable({}, {})} do
      assert.is_false(futures.TimeoutError:is(v))
    end
    assert.is_false(futures.Error:is(nil))
    assert.is_false(futures.Error:is())
  end)

  it("raised by the runtime are instances with type and message", function()
    local f = futures.Future()
    local err = support.error_of(f.result, f, 0)
    assert.is_true(futures.TimeoutError:is(err))
    assert.equal("TimeoutError", err.type)
    assert.equal("string", type(err.message))
    assert.equal("TimeoutError: " .. err.message, tostring(err))
  end)

  it("are made from a copy of a table, which stays as it was", function()
    local t = {message = "m", code = 7}
    local e = futures.TimeoutError(t)
    assert.is_false(rawequal(t, e))
    assert.is_nil(getmetatable(t))
    assert.is_nil(t.type)
    assert.equal(7, e.code)
    assert.equal("TimeoutError: m", tostring(e))
    local mod = futures.RuntimeError(futures)
    assert.is_nil(futures.type)
    assert.is_nil(getmetatable(futures))
    assert.equal("RuntimeError", mod.type)
  end)

  it("print without raising, whatever their message was set to", function()
    local raising = setmetatable({}, {__tostring = function() error("no") end})
    assert.equal("Error: true", tostring(setmetatable({message = true}, futures.Error)))
    assert.equal("Error: (error object is a table value)",
                 tostring(setmetatable({message = raising}, futures.Error)))
    assert.equal("TimeoutError: ", tostring(setmetatable({type = 1}, futures.TimeoutError)))
  end)
end)
