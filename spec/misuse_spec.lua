local support = require "support"
local futures = support.futures

local HINT = "globals of the caller are not copied to workers: pass it as an argument, capture it as a local, or define it in the initializer"

-- Misuse gets a plain Lua error in lauxlib's words: call -> exact message.
describe("misuse", function()
  local ex, px, f
  setup(function()
    ex = futures.ThreadPoolExecutor(1)
    px = futures.ProcessPoolExecutor(1) -- starts no worker until a submit
    f = futures.Future()
    -- a global of the caller that tasks, in states of their own, lack
    _G.spec_helper = function() return 1 end
  end)
  teardown(function()
    _G.spec_helper = nil
    ex:shutdown() px:shutdown() ex, px = nil, nil
    support.collect()
  end)

  local cases = {
    {function() ex:submit(nil) end, "bad argument #1 to 'submit' (function expected, got nil)"},
    {function() ex:submit(42) end, "bad argument #1 to 'submit' (function expected, got number)"},
    {function() ex.submit({}, print) end, "bad argument #1 to 'submit' (ThreadPoolExecutor expected, got table; use ex:submit, not ex.submit)"},
    {function() futures.ThreadPoolExecutor(0) end, "bad argument #1 to 'ThreadPoolExecutor' ('max_workers' must be greater than 0)"},
    {function() futures.ThreadPoolExecutor{max_workers = 0} end, "bad argument #1 to 'ThreadPoolExecutor' ('max_workers' must be greater than 0)"},
    {function() futures.ProcessPoolExecutor(0) end, "bad argument #1 to 'ProcessPoolExecutor' ('max_workers' must be greater than 0)"},
    {function() futures.ProcessPoolExecutor{max_workers = 0} end, "bad argument #1 to 'ProcessPoolExecutor' ('max_workers' must be greater than 0)"},
    -- issue 13, item 4: mistakes that used to pass silently
    {function() ex:map(print, {1}, {chunk_size = 2}) end, "bad argument #3 to 'map' (unknown option 'chunk_size')"},
    {function() ex:map(print, {1}, {timout = 5}) end, "bad argument #3 to 'map' (unknown option 'timout')"},
    {function() ex:map(print, {a = 1}) end, "bad argument #2 to 'map' (unknown option 'a')"},
    {function() px:map(print, {1}, {chunk_size = 2}) end, "bad argument #3 to 'map' (unknown option 'chunk_size')"},
    {function() ex:shutdown("now") end, "bad argument #1 to 'shutdown' (boolean or table expected, got string)"},
    {function() ex:shutdown(1) end, "bad argument #1 to 'shutdown' (boolean or table expected, got number)"},
    {function() ex:shutdown(true, "yes") end, "bad argument #2 to 'shutdown' (boolean expected, got string)"},
    {function() ex:shutdown{wait = "no"} end, "bad argument #1 to 'shutdown' ('wait' must be a boolean)"},
    {function() px:shutdown{cancel_futures = 1} end, "bad argument #1 to 'shutdown' ('cancel_futures' must be a boolean)"},
    -- issue 13, item 5: messages that say what to do
    {function() ex.submit(print) end, "bad argument #1 to 'submit' (ThreadPoolExecutor expected, got function; use ex:submit, not ex.submit)"},
    {function() ex.map(print, {1}) end, "bad argument #1 to 'map' (ThreadPoolExecutor expected, got function; use ex:map, not ex.map)"},
    {function() ex.shutdown() end, "bad argument #1 to 'shutdown' (ThreadPoolExecutor expected, got no value; use ex:shutdown, not ex.shutdown)"},
    {function() px.submit(print) end, "bad argument #1 to 'submit' (ProcessPoolExecutor expected, got function; use ex:submit, not ex.submit)"},
    {function() px.shutdown(true) end, "bad argument #1 to 'shutdown' (ProcessPoolExecutor expected, got boolean; use ex:shutdown, not ex.shutdown)"},
    {function() ex:submit(function() return spec_helper() end):result() end, "attempt to call a nil value (global 'spec_helper'); " .. HINT},
    {function() error(ex:submit(function() return spec_helper + 1 end):exception(), 0) end, "attempt to perform arithmetic on a nil value (global 'spec_helper'); " .. HINT},
    {function() ex:map(function(x) return spec_helper(x) end, {1}):collect() end, "attempt to call a nil value (global 'spec_helper'); " .. HINT},
    {function() px:submit(function() return spec_helper.x end):result() end, "attempt to index a nil value (global 'spec_helper'); " .. HINT},
    {function() local fh <close> = assert(io.open("spec/support.lua")) ex:submit(function() return fh:read("l") end) end,
     "TransferError: cannot transfer argument #1 (upvalue 'fh'): file (a file handle stays in its state: open it inside the task)"},
    {function() ex:submit(io.lines, io.stdin) end, "TransferError: cannot transfer argument #2: file (a file handle stays in its state: open it inside the task)"},
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
    -- another library's userdata (an executor's self check reads a tag)
    {function() f.result(io.stdout) end, "bad argument #1 to 'result' (Future expected, got FILE*)"},
    {function() getmetatable(f).__gc(io.stdout) end, "bad argument #1 to '__gc' (Future expected, got FILE*)"},
    {function() futures.wait({f, io.stdout}) end, "bad argument #1 to 'wait' (Future expected at index 2, got FILE*)"},
    {function() futures.wait({[io.stdout] = true}) end, "bad argument #1 to 'wait' (Future expected as key, got FILE*)"},
    {function() ex.submit(io.stdout, print) end, "bad argument #1 to 'submit' (ThreadPoolExecutor expected, got FILE*)"},
    -- C would cut these strings at the zero byte and use what is left
    {function() futures.ProcessPoolExecutor{start_method = "fork\0x"} end, "bad argument #1 to 'ProcessPoolExecutor' ('start_method' contains a zero byte)"},
    {function() futures.ProcessPoolExecutor{worker = "/bin/true\0junk"} end, "bad argument #1 to 'ProcessPoolExecutor' ('worker' contains a zero byte)"},
    {function() futures.ProcessPoolExecutor{start_method = 1} end, "bad argument #1 to 'ProcessPoolExecutor' ('start_method' must be a string)"},
    {function() futures.ThreadPoolExecutor{thread_name_prefix = "w\0x"} end, "bad argument #1 to 'ThreadPoolExecutor' ('thread_name_prefix' contains a zero byte)"},
    {function() futures.wait({f}, {return_when = "ALL_COMPLETED\0x"}) end, "bad argument #2 to 'wait' ('return_when' contains a zero byte)"},
    {function() ex:shutdown{["wait\0x"] = true} end, "bad argument #1 to 'shutdown' (option name contains a zero byte)"},
  }

  -- A message is a string; a runtime error (TransferError) is compared by
  -- its tostring.
  for _, case in ipairs(cases) do
    it(case[2], function()
      local ok, err = pcall(case[1])
      assert.is_false(ok)
      if type(err) == "table" then err = tostring(err) end
      assert.equal("string", type(err))
      assert.equal(case[2], (err:gsub("^[^:]*:%d+: ", "")))
    end)
  end

  it("refuses a table with string keys and no [1] as the last iterable", function()
    local err = support.error_of(function() ex:map(print, {a = 1, b = 2}) end)
    assert.matches(":%d+: bad argument #2 to 'map' %(unknown option '[ab]'%)$", err)
  end)

  it("hints only when the caller has the global the task lacked", function()
    local err = ex:submit(function() return not_a_global_anywhere() end):exception()
    assert.matches("%(global 'not_a_global_anywhere'%)$", err)
    -- a string of the same shape that a task raises by hand is left alone
    local own = ex:submit(function() error("attempt to call a nil value (field 'spec_helper')") end):exception()
    assert.matches("%(field 'spec_helper'%)$", own)
    -- the worker's traceback, whose first line is the message, has it too
    local failed = ex:submit(function() return spec_helper() end)
    failed:exception()
    local tb = failed:traceback()
    assert.equal(1, select(2, tb:gsub("globals of the caller are not copied", "")))
    assert.matches("^[^\n]*" .. HINT:gsub("%p", "%%%0"), tb)
  end)

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

  -- The iterator's per-item self check reads a tag in the userdata
  -- (bindings/map.c); whatever else comes is refused the full way.
  it("refuses anything but a map iterator as the iterator's self", function()
    local it = ex:map(function(x) return x end, {1})
    local call = getmetatable(it).__call
    for _, bad in ipairs{{}, io.stdout, f, 5, ex} do
      for _, method in ipairs{it.collect, it.close, call} do
        local ok, err = pcall(method, bad)
        assert.is_false(ok)
        assert.matches("bad argument #1 to '.-' %(MapIterator expected, got ", err)
      end
    end
    assert.same({1, n = 1}, it:collect())
  end)

  it("leaves no future pending after a refused submit", function()
    local before = collectgarbage("count")
    for _ = 1, 100 do pcall(ex.submit, ex, print, coroutine.create(print)) end
    assert.equal(1, ex:submit(function() return 1 end):result())
  end)
end)
