-- W7: pool life cycle: create a pool of 2, run one task, shutdown(true);
-- ms per cycle.  'spawn' is the process pool's default start method.
-- Usage: lua5.4 bench/lua/w7.lua thread|spawn|fork [cycles]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local kind = arg[1]
local default = ({thread = 2000, spawn = 20, fork = 100})[kind]
assert(default, "usage: w7.lua thread|spawn|fork [cycles]")
local N = math.tointeger(tonumber(arg[2])) or default
local function one() return 1 end

local make
if kind == "thread" then
  make = function() return futures.ThreadPoolExecutor(2) end
else
  B.need_process_pool(futures, "W7")
  local ok, err = B.process_pool(futures, kind)
  if not ok then
    io.stderr:write("W7 ", kind, ": ", tostring(err), "\n")
    B.emit("W7", "skipped", "no-" .. kind)
    os.exit(0)
  end
  err:shutdown(true)
  make = function() return select(2, B.process_pool(futures, kind)) end
end

local t0 = futures.now()
for _ = 1, N do
  local ex = make()
  assert(ex:submit(one):result() == 1)
  ex:shutdown(true)
end
local dt = futures.now() - t0
B.emit("W7", string.format("%s_ms %.4f", kind, dt / N * 1e3))
