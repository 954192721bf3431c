-- concurrent.futures.mpi, as its user runs it: each test starts an MPI
-- job on this machine (loopback only) and judges its output and exit
-- status. Pending where there is no mpiexec or no MPI module, and under
-- ThreadSanitizer (Open MPI is not clean under it); under AddressSanitizer
-- the jobs run the sanitized bin/luafutures, without the preload (mpiexec
-- is not ours). MPIEXEC_TIMEOUT only guards against a hang; nothing waits
-- on it.
local support = require "support"
local sigint = require "sigint"

local MPIEXEC = os.getenv("MPIEXEC") or "mpiexec"
local ENV = "env -u LD_PRELOAD OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
  .. "OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_tcp_if_include=lo "
  .. "OMPI_MCA_oob_tcp_if_include=lo MPIEXEC_TIMEOUT=${MPIEXEC_TIMEOUT:-120} "

local function usable()
  if not support.children_ok or (os.getenv("LD_PRELOAD") or ""):find("libtsan") then
    return false, "not under ThreadSanitizer"
  end
  if os.execute("command -v " .. MPIEXEC .. " >/dev/null 2>&1") ~= true then
    return false, "no " .. MPIEXEC .. " (apt-get install openmpi-bin libopenmpi-dev)"
  end
  local f = io.open("concurrent/futures/mpi.so")
  if not f then return false, "no concurrent/futures/mpi.so (make mpi)" end
  f:close()
  return true
end
local ok, why = usable()
if not ok then print("spec/mpi_spec.lua: MPI specs skipped: " .. why) end

-- Runs `mpiexec -n n <args>`: stdout, stderr, exit status.
local function mpirun(n, args)
  local errs = os.tmpname()
  local p = io.popen(("%s%s -n %d %s 2>%s"):format(ENV, MPIEXEC, n, args, errs))
  local out = p:read("a")
  local _, _, status = p:close()
  local ef = io.open(errs)
  local err = ef:read("a")
  ef:close()
  os.remove(errs)
  return out, err, status
end

local function script(code)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write('package.cpath = "./?.so;" .. package.cpath\n', code)
  f:close()
  return path
end

-- The lines of out, sorted: ranks print in no set order.
local function sorted_lines(out)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  table.sort(lines)
  return lines
end

local POOL = "bin/luafutures -m concurrent.futures.mpi "

-- An `it` that is pending where MPI cannot run.
local function it_mpi(name, fn)
  it(name, function()
    if not ok then pending(why) end
    fn()
  end)
end

describe("concurrent.futures.mpi", function()

  it_mpi("passes the executor cases under mpiexec -n 3", function()
    local out, err, status = mpirun(3, POOL .. "/usr/bin/busted -o TAP -p cases spec/mpi")
    assert.equal(0, status, out .. err)
    assert.matches("\n1%.%.%d+\n", "\n" .. out)
    assert.not_matches("not ok", out)
    -- the failing initializer of one case is reported by its rank
    assert.matches("exception in initializer of 'MPIWorker%-1@", err)
  end)

  it_mpi("runs the script on rank 0 with its arguments, the others serving", function()
    local path = script [[
      local futures = require "concurrent.futures"
      local mpi = require "concurrent.futures.mpi"
      print(mpi.rank, mpi.size, select("#", ...), table.concat({...}, ","), arg[1])
      local ex <close> = mpi.MPIPoolExecutor()
      local names = {}
      for _, n in ex:map(function() return futures.thread_name() end, {1, 2, 3, 4, 5, 6}) do names[n] = true end
      print(names["MPIWorker-1@" .. mpi.host] or names["MPIWorker-2@" .. mpi.host])
    ]]
    local out, err, status = mpirun(3, POOL .. path .. " a b")
    os.remove(path)
    assert.equal(0, status, err)
    assert.equal("0\t3\t2\ta,b\ta\ntrue\n", out)
  end)

  it_mpi("gives MPICommExecutor to the root and nil to the others, collectively", function()
    local path = script [[
      local futures = require "concurrent.futures"
      local mpi = require "concurrent.futures.mpi"
      for _, root in ipairs{0, 2} do
        local cx <close> = mpi.MPICommExecutor{root = root}
        if cx then
          assert(mpi.rank == root)
          local a, who = cx:submit(function(x) return x * 2, futures.thread_name() end, 21):result()
          local t = cx:map(math.max, {1, 5}, {4, 2}, {chunksize = 2}):collect()
          print(("root %d: %d %s %d %d %s"):format(root, a, who:match("^MPIWorker%-%d") and "named" or who,
            t[1], t[2], tostring(cx):match("^<MPICommExecutor") and "comm" or "?"))
        else
          print(("rank %d served root %d"):format(mpi.rank, root))
        end
      end
    ]]
    local out, err, status = mpirun(3, "bin/luafutures " .. path)
    os.remove(path)
    assert.equal(0, status, err)
    assert.same({
      "rank 0 served root 2", "rank 1 served root 0", "rank 1 served root 2",
      "rank 2 served root 0", "root 0: 42 named 4 5 comm", "root 2: 42 named 4 5 comm",
    }, sorted_lines(out))
  end)

  it_mpi("says there are no worker ranks under mpiexec -n 1", function()
    local path = script [[
      local mpi = require "concurrent.futures.mpi"
      local ok, e = pcall(mpi.MPIPoolExecutor)
      print(e.type, e.message)
    ]]
    local out, err, status = mpirun(1, POOL .. path)
    assert.equal(0, status, err)
    assert.matches("^RuntimeError\tMPIPoolExecutor: the MPI job has no worker ranks %(its size is 1%): start it with mpiexec %-n 2 or more\n$", out)
    out, err, status = mpirun(1, "bin/luafutures -e 'package.cpath=\"./?.so;\"..package.cpath' "
      .. "-e 'print(pcall(require(\"concurrent.futures.mpi\").MPICommExecutor))'")
    os.remove(path)
    assert.equal(0, status, err)
    assert.matches("^false\tRuntimeError: MPICommExecutor: the MPI job has no worker ranks", out)
  end)

  it_mpi("refuses MPIPoolExecutor where no rank serves", function()
    local path = script [[
      local mpi = require "concurrent.futures.mpi"
      local ok, e = pcall(mpi.MPIPoolExecutor)
      print(mpi.rank, e.type, e.message:match("no rank serves it") ~= nil)
    ]]
    local out, err, status = mpirun(2, "bin/luafutures " .. path)
    os.remove(path)
    assert.equal(0, status, err)
    assert.same({"0\tRuntimeError\ttrue", "1\tRuntimeError\ttrue"}, sorted_lines(out))
  end)

  it_mpi("releases the serving ranks when the script fails", function()
    local path = script [[
      local mpi = require "concurrent.futures.mpi"
      local ex = mpi.MPIPoolExecutor()
      ex:submit(print, "from a rank"):result()
      error("the script failed")
    ]]
    local out, err, status = mpirun(3, POOL .. path)
    os.remove(path)
    assert.equal("from a rank\n", out)
    assert.matches("the script failed", err)
    assert.not_equal(0, status)
  end)

  it_mpi("runs scripts/mpi_primes.lua on the ranks", function()
    local out, err, status = mpirun(3, POOL .. "scripts/mpi_primes.lua")
    assert.equal(0, status, err)
    assert.equal("", err)
    assert.equal(table.concat({
      "112272535095293 is prime: true", "112582705942171 is prime: true",
      "112272535095293 is prime: true", "115280095190773 is prime: true",
      "115797848077099 is prime: true", "1099726899285419 is prime: false", ""}, "\n"), out)
  end)

  it_mpi("fails a task whose result finds no memory on its rank as the process pool does", function()
    -- The task limits its own rank's address space to what it uses now
    -- plus 32 MiB and returns a 64 MiB string: the buffer its bytes are
    -- written in does not fit. The task fails with Lua's own memory
    -- error, a string, as a process worker's does, not with an error
    -- table, and the rank goes on serving.
    -- AddressSanitizer aborts where malloc would return NULL.
    if support.sanitizer then pending("out of memory aborts under a sanitizer") end
    if os.execute("command -v prlimit >/dev/null 2>&1") ~= true then pending("no prlimit") end
    local path = script(support.SHORT_RESULT .. [[
      local mpi = require "concurrent.futures.mpi"
      local ex <close> = mpi.MPIPoolExecutor{max_workers = 1}
      local ok, e = pcall(function() return ex:submit(short):result() end)
      print(ok, type(e), e == "not enough memory" and e or "other")
      print(ex:submit(function() return 2 end):result(), tostring(ex):match("state=%a+"))
    ]])
    local out, err, status = mpirun(2, POOL .. path)
    os.remove(path)
    assert.equal(0, status, err)
    assert.equal("false\tstring\tnot enough memory\n2\tstate=running\n", out)
  end)

  it_mpi("cuts shutdown(wait) short with ^C on rank 0, while the rank's task goes on", function()
    -- As spec/interrupt_spec.lua: the task blocks on a FIFO that this
    -- spec opens only once it has read the interrupted wait's line, so a
    -- wait that the signal did not wake would never end (MPIEXEC_TIMEOUT
    -- ends the job then, and the line never comes).
    local dir, fifo = sigint.fifo()
    local path = script [[
      local futures = require "concurrent.futures"
      local mpi = require "concurrent.futures.mpi"
      local ex = mpi.MPIPoolExecutor{max_workers = 1}
      local f = ex:submit(function(p)
        io.stdout:write("started\n"); io.stdout:flush()
        local h = io.open(p, "r"); h:read("a"); h:close()
        return "task done"
      end, ...)
      print(pcall(function()
        io.stdout:write("pid ", futures.getpid(), "\n"); io.stdout:flush()
        ex:shutdown(true)
      end))
      io.stdout:flush()
      print(f:result())
    ]]
    local lines, status = sigint.run(("%s%s -n 2 %s%s %s"):format(ENV, MPIEXEC, POOL, path, fifo), dir, fifo)
    os.remove(path)
    assert.equal(0, status, table.concat(lines, "\n"))
    assert.equal("false\tinterrupted!", lines[#lines - 1])
    assert.equal("task done", lines[#lines])
  end)

  it_mpi("ends the whole job with a non-zero status when a rank is lost", function()
    local path = script [[
      local mpi = require "concurrent.futures.mpi"
      local ex <close> = mpi.MPIPoolExecutor()
      local f = ex:submit(function() os.exit(9) end)
      f:result()
      print("not reached")
    ]]
    local out, err, status = mpirun(3, POOL .. path)
    os.remove(path)
    assert.equal(9, status)
    assert.equal("", out)
  end)
end)
