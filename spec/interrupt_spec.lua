-- ^C in bin/luafutures: a SIGINT wakes whatever wait the main state is
-- blocked in and raises "interrupted!" there; the script ends with exit
-- status 1. Asserted as an ordering: the task the script waits for blocks
-- on a FIFO that this spec opens only after it has read "interrupted!", so
-- a wait that the signal did not wake would never end.

local sigint = require "sigint"

local CLI = "bin/luafutures"

-- Under ThreadSanitizer's preload /bin/sh itself breaks: this spec runs in
-- the suite's second pass, from a busted without the preload.
local preloaded = os.getenv("LUAFUTURES_SANITIZE") == "thread" and os.getenv("LD_PRELOAD")

local function spit(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- The task: says it started, blocks until the FIFO is opened for
-- writing, says it is done.
local PRELUDE = [[
local futures = require "concurrent.futures"
local fifo = arg[1]
local function task(path)
  io.stdout:write("started\n"); io.stdout:flush()
  local h = io.open(path, "r"); h:read("a"); h:close()
  io.stdout:write("task done\n"); io.stdout:flush()
  return true
end
local ex = futures.ThreadPoolExecutor(1)
io.stdout:write("pid ", futures.getpid(), "\n"); io.stdout:flush()
]]

local WAITS = {
  result = "ex:submit(task, fifo):result()",
  exception = "ex:submit(task, fifo):exception()",
  wait = "futures.wait({ex:submit(task, fifo)})",
  as_completed = "for f in futures.as_completed({ex:submit(task, fifo)}) do end",
  sleep = "ex:submit(task, fifo); futures.sleep(3600)",
  map = "for i in ex:map(task, {fifo, fifo, fifo}) do end",
  ["shutdown(wait)"] = "ex:submit(task, fifo); ex:shutdown(true)",
  ["a Queue's get"] = "ex:submit(task, fifo); futures.Queue():get()",
}

-- Runs the script blocked in `wait`; returns its output lines (stdout and
-- stderr together) and exit status.
local function interrupt(wait)
  local dir, fifo = sigint.fifo()
  spit(dir .. "/script.lua", PRELUDE .. wait .. "\nio.stdout:write('not interrupted\\n')\n")
  return sigint.run(("exec timeout 60 %s %s/script.lua %s"):format(CLI, dir, fifo), dir, fifo)
end

local function index_of(lines, pattern)
  for i, l in ipairs(lines) do
    if l:find(pattern, 1, true) then return i end
  end
end

describe("SIGINT to bin/luafutures", function()
  for name, wait in pairs(WAITS) do
    it("ends a script blocked in " .. name .. " with interrupted!, before the task ends", function()
      if preloaded then return pending("runs commands: in the suite's second pass") end
      local lines, status = interrupt(wait)
      local text = table.concat(lines, "\n")
      assert.equal(1, status, text)
      local intr, done = index_of(lines, "interrupted!"), index_of(lines, "task done")
      assert.truthy(intr, text)
      assert.truthy(done, text) -- the state's close waited for the task
      assert.is_true(intr < done, text)
      assert.falsy(index_of(lines, "not interrupted"), text)
      if name == "map" then -- its calls not started were cancelled
        local n = 0
        for _, l in ipairs(lines) do n = n + (l == "started" and 1 or 0) end
        assert.equal(1, n, text)
      end
    end)
  end
end)
