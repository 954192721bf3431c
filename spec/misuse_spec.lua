local support = require "support"
local futures = support.futures

-- Misuse gets a plain Lua error in lauxlib's words: call -> exact message.
describe("misuse", function()
  local ex, f
  setup(function() ex = futures.ThreadPoolExecutor(1) f = futures.Future() end)
  teardown(function() ex:shutdown() ex = nil support.collect() end)

  local cases = {
    {function() ex:submit(nil) end, "bad argument #1 to 'submit' (function expected, got nil)"},
    {function() ex:submit(42) end, "bad argument #1 to 'submit' (function expected, got number)"},
    {function() ex.submit({}, print) end, "bad argument #1 to 'submit' (ThreadPoolExecutor expected, got table)"},
    {function() futures.ThreadPoolExecutor(0) end, "bad argument #1 to 'ThreadPoolExecutor' ('max_workers' must be greater than 0)"},
    {function() futures.ThreadPoolExecutor{max_workers = -1} end, "bad argument #1 to 'ThreadPoolExecutor' ('max_workers' must be greater than 0)"},
    {function() futures.ThreadPoolExecutor{max_tasks_per_child = 1} end, "bad argument #1 to 'ThreadPoolExecutor' (unknown option 'max_tasks_per_child')"},
    {function() futures.ThreadPoolExecutor{max_worker = 1} end, "bad argument #1 to 'ThreadPoolExecutor' (unknown option 'max_worker')"},
    {function() futures.ThreadPoolExecutor("x") end, "bad argument #1 to 'ThreadPoolExecutor' (table or integer expected, got string)"},
    {function() futures.ThreadPoolExecutor(1.5) end, "bad argument #1 to 'ThreadPoolExecutor' (number has no integer representation)"},
    {function() futures.ThreadPoolExecutor{max_workers = 1.5} end, "bad argument #1 to 'ThreadPoolExecutor' ('max_workers' must be an integer)"},
    {function() ex:map(print, {1}, {chunksize = "2"}) end, "bad argument #3 to 'map' ('chunksize' must be an integer)"},
    {function() futures.ThreadPoolExecutor{initializer = 1} end, "bad argument #1 to 'ThreadPoolExecutor' ('initializer' must be a function)"},
    {function() ex:shutdown{cancel = true} end, "bad argument #1 to 'shutdown' (unknown option 'cancel')"},
    {function() ex:map(print, {1}, {chunksize = 0}) end, "bad argument #3 to 'map' ('chunksize' must be at least 1)"},
    {function() ex:map(print, {1}, {timeout = "x"}) end, "bad argument #3 to 'map' ('timeout' must be a number)"},
    {function() futures.wait({}, {timeout = "x"}) end, "bad argument #2 to 'wait' ('timeout' must be a number)"},
    {function() ex:map(print, {1}, {chunk_size = 2, timeout = 1}) end, "bad argument #3 to 'map' (unknown option 'chunk_size')"},
    {function() ex:map(print, 5) end, "bad argument #2 to 'map' (table or function expected, got number)"},
    {function() ex:map(print) end, "bad argument #2 to 'map' (at least one iterable expected)"},
    {function() ex:map(print, {timeout = 1}) end, "bad argument #2 to 'map' (at least one iterable expected)"},
    {function() ex:map(print, table.unpack(support.filled(600000, {1}))) end, "bad argument #2 to 'map' (too many iterables)"},
    {function() futures.ThreadPoolExecutor{initializer = print, initargs = setmetatable({}, {__len = function() return math.maxinteger end})} end,
     "bad argument #1 to 'ThreadPoolExecutor' (too many 'initargs')"},
    {function() futures.ThreadPoolExecutor{initializer = print, initargs = setmetatable({}, {__len = function() return 2^31 end})} end,
     "bad argument #1 to 'ThreadPoolExecutor' (too many 'initargs')"},
    {function() futures.ThreadPoolExecutor{initializer = print, initargs = setmetatable({}, {__len = function() return -5 end})} end,
     "bad argument #1 to 'ThreadPoolExecutor' ('initargs' has a negative length)"},
    {function() futures.ThreadPoolExecutor{2} end, "bad argument #1 to 'ThreadPoolExecutor' (unknown option [1] (a number key))"},
    {function() f.set_exception(nil) end, "bad argument #1 to 'set_exception' (Future expected, got nil)"},
    {function() futures.TimeoutError(true) end, "bad argument #1 to 'TimeoutError' (string or table expected, got boolean)"},
    {function() futures.Error(futures.TimeoutError) end, "bad argument #1 to 'Error' (table without a metatable expected)"},
    {function() futures.Error{message = true} end, "bad argument #1 to 'Error' ('message' must be a string)"},
    {function() f:result(-1) end, "bad argument #1 to 'result' (timeout must be non-negative)"},
    {function() f:result("soon") end, "bad argument #1 to 'result' (number expected, got string)"},
    {function() f:add_done_callback(nil) end, "bad argument #1 to 'add_done_callback' (function expected, got nil)"},
    {function() futures.wait({f}, -1) end, "bad argument #2 to 'wait' (timeout must be non-negative)"},
    {function() futures.wait({f}, 1, "SOMETIMES") end, "bad argument #3 to 'wait' (invalid option 'SOMETIMES')"},
    {function() futures.wait({f}, {timeout = 1, when = 1}) end, "bad argument #2 to 'wait' (unknown option 'when')"},
    {function() futures.wait({f}, {timeout = -2}) end, "bad argument #2 to 'wait' (timeout must be non-negative)"},
    {function() futures.wait({f}, {return_when = "NEVER"}) end, "bad argument #2 to 'wait' (invalid return_when 'NEVER')"},
    {function() ex:map(print, {1}, {timeout = -1}) end, "bad argument #3 to 'map' (timeout must be non-negative)"},
    {function() futures.wait({f, 3}) end, "bad argument #1 to 'wait' (Future expected at index 2, got number)"},
    {function() futures.wait(nil) end, "bad argument #1 to 'wait' (table expected, got nil)"},
    {function() futures.as_completed({f}, -0.5) end, "bad argument #2 to 'as_completed' (timeout must be non-negative)"},
    {function() futures.as_completed({"x"}) end, "bad argument #1 to 'as_completed' (Future expected at index 1, got string)"},
    {function() futures.sleep(-1) end, "bad argument #1 to 'sleep' (non-negative number expected)"},
    {function() f.result(ex) end, "bad argument #1 to 'result' (Future expected, got ThreadPoolExecutor)"},
    -- C would cut these strings at the zero byte and use what is left
    {function() futures.ProcessPoolExecutor{start_method = "fork\0x"} end, "bad argument #1 to 'ProcessPoolExecutor' ('start_method' contains a zero byte)"},
    {function() futures.ProcessPoolExecutor{worker = "/bin/true\0junk"} end, "bad argument #1 to 'ProcessPoolExecutor' ('worker' contains a zero byte)"},
    {function() futures.ProcessPoolExecutor{start_method = 1} end, "bad argument #1 to 'ProcessPoolExecutor' ('start_method' must be a string)"},
    {function() futures.ThreadPoolExecutor{thread_name_prefix = "w\0x"} end, "bad argument #1 to 'ThreadPoolExecutor' ('thread_name_prefix' contains a zero byte)"},
    {function() futures.wait({f}, {return_when = "ALL_COMPLETED\0x"}) end, "bad argument #2 to 'wait' ('return_when' contains a zero byte)"},
    {function() ex:shutdown{["wait\0x"] = true} end, "bad argument #1 to 'shutdown' (option name contains a zero byte)"},
  }

  for _, case in ipairs(cases) do
    it(case[2], function()
      local ok, err = pcall(case[1])
      assert.is_false(ok)
      assert.equal("string", type(err))
      assert.equal(case[2], (err:gsub("^[^:]*:%d+: ", "")))
    end)
  end

  it("takes a numeric string as a timeout in an options table too, as positionally", function()
    local done = ex:submit(function() return 1 end)
    assert.equal(1, #futures.wait({done}, {timeout = "5"}))
    assert.same({1, n = 1}, ex:map(function(x) return x end, {1}, {timeout = "5"}):collect())
  end)

  it("maps over many iterables inside a coroutine", function()
    local args = support.filled(60, {1, 2})
    local sum = coroutine.wrap(function()
      return ex:map(function(...) return select("#", ...) end, table.unpack(args)):collect()
    end)()
    assert.same({60, 60, n = 2}, sum)
  end)

  it("leaves no future pending after a refused submit", function()
    local before = collectgarbage("count")
    for _ = 1, 100 do pcall(ex.submit, ex, print, coroutine.create(print)) end
    assert.equal(1, ex:submit(function() return 1 end):result())
  end)
end)
