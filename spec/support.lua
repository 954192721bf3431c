-- Shared by the specs: the module from this checkout, and gates -- futures
-- the test completes itself -- so no spec sleeps to synchronise.
package.cpath = "./?.so;" .. package.cpath
local futures = require "concurrent.futures"

local support = {futures = futures}

-- Under ThreadSanitizer the runtime is preloaded into this process and its
-- children inherit it, which breaks even /bin/sh: specs that run commands
-- are pending there (AddressSanitizer runs them).
support.children_ok = os.getenv("LUAFUTURES_SANITIZE") ~= "thread"

-- A gate is an unbound future: a task blocks on gate:result(), the test
-- opens it with gate:set_result(true).
function support.gate() return futures.Future() end

-- The error raised by fn(...), or fails if none.
function support.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return err
end

-- Forces collection of everything unreachable, twice (finalizers revive).
function support.collect()
  collectgarbage() collectgarbage()
end

return support
