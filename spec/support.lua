-- Shared by the specs: the module from this checkout, and gates -- futures
-- the test completes itself -- so no spec sleeps to synchronise.
package.cpath = "./?.so;" .. package.cpath
local futures = require "concurrent.futures"

local support = {futures = futures}

-- Under ThreadSanitizer the runtime is preloaded into this process and its
-- children inherit it, which breaks even /bin/sh: specs that run commands
-- are pending there (AddressSanitizer runs them).
support.children_ok = os.getenv("LUAFUTURES_SANITIZE") ~= "thread"

-- The sanitizer this suite runs under ("address", "thread") or nil: the
-- runtime make test preloads names it.
local preload = os.getenv("LD_PRELOAD") or ""
support.sanitizer = os.getenv("LUAFUTURES_SANITIZE")
  or (preload:find("libasan") and "address")
  or (preload:find("libtsan") and "thread") or nil

-- GCC 12's ASan and TSan runtimes do not hold their allocators' locks
-- across fork(): a forked child that allocates can block forever when
-- another thread of the parent was allocating at that moment. A sanitized
-- fork worker therefore execs the worker executable at once; one that has
-- none runs Lua in the forked child, which only a plain run does safely.
-- fork_ok says whether such a child may be forked here; FORK_LIMIT is the
-- reason a spec that needs one is pending.
support.fork_ok = support.sanitizer == nil

-- The head of a child script whose task `short` limits its own process's
-- address space to what it uses now plus 32 MiB and then returns a 64 MiB
-- string, whose bytes cannot be had (needs prlimit).
support.SHORT_RESULT = [[
local futures = require "concurrent.futures"
local function short()
  local s = string.rep("x", (1 << 26) - 4096)
  collectgarbage() collectgarbage()
  local vm
  for l in io.lines("/proc/self/status") do vm = vm or tonumber(l:match("^VmSize:%s*(%d+)")) end
  assert(os.execute(("prlimit --pid %d --as=%d"):format(futures.getpid(), (vm + 32 * 1024) * 1024)))
  return s
end
]]
support.FORK_LIMIT = "a forked child running Lua can hang in the "
  .. (support.sanitizer == "thread" and "ThreadSanitizer" or "AddressSanitizer")
  .. "'s allocator, which is not fork-safe: the plain run covers it"

-- A gate is an unbound future: a task blocks on gate:result(), the test
-- opens it with gate:set_result(true).
function support.gate() return futures.Future() end

-- The error raised by fn(...), or fails if none.
function support.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return err
end

-- A Lua script run as a child of this process, with this checkout's
-- module: its stdout, stderr and exit status.
function support.run_script(code, env)
  local path, errs = os.tmpname(), os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write('package.cpath = "./?.so;" .. package.cpath\n', code)
  f:close()
  local p = io.popen(("%s timeout 30 lua5.4 %s 2>%s"):format(env or "", path, errs))
  local out = p:read("a")
  local _, _, status = p:close()
  local ef = io.open(errs)
  local err = ef:read("a")
  ef:close()
  os.remove(path)
  os.remove(errs)
  return out, err, status
end

-- Runs `code`, a chunk that raises when its checks fail, as a child whose
-- stderr must match `pattern`: a message the test expects is checked
-- instead of landing between busted's dots. Where children cannot run
-- (under TSan) it runs in this process, its stderr left on the screen.
function support.expect_stderr(code, pattern)
  if not support.children_ok then return assert(load(code))() end
  local luassert = require "luassert"
  local out, err, status = support.run_script(code)
  luassert.equal(0, status, err)
  luassert.matches(pattern, err)
  return out
end

-- The open descriptors of this process, read from /proc without a child.
function support.fds()
  local open = {}
  for n = 0, 1023 do
    local f = io.open("/proc/self/fdinfo/" .. n)
    if f then f:close() open[#open + 1] = n end
  end
  return table.concat(open, " ")
end

-- A list of n copies of v.
function support.filled(n, v)
  local t = {}
  for i = 1, n do t[i] = v end
  return t
end

-- Forces collection of everything unreachable, twice (finalizers revive).
function support.collect()
  collectgarbage() collectgarbage()
end

return support
