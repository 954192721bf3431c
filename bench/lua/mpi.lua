-- MPI: MPIPoolExecutor over 2 worker ranks (shared memory), against our
-- own ProcessPoolExecutor(2) in the same process, on two workloads:
--   tasks: submit N trivial tasks (x + 1), then collect every result;
--          tasks/s from the first submit to the last result, warm pools.
--   map:   W3's map(square, 0 .. M-1, {chunksize = 1000}), each chunk one
--          message; items/s from the map call to the last result.
-- Usage (bench/mpi.sh runs it):
--   mpiexec -n 3 bin/luafutures -m concurrent.futures.mpi bench/lua/mpi.lua [N=20000] [M=1000000]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local mpi = require "concurrent.futures.mpi"
local B = require "benchlib"

local N = math.tointeger(tonumber(arg[1])) or 20000
local M = math.tointeger(tonumber(arg[2])) or 1000000
assert(mpi.size == 3, "run with mpiexec -n 3: rank 0 and 2 worker ranks")

local function inc(x) return x + 1 end
local function square(x) return x * x end

local function tasks(ex)
  ex:submit(inc, 0):result()
  local t0 = futures.now()
  local fs = {}
  for i = 1, N do fs[i] = ex:submit(inc, i) end
  local total = 0
  for i = 1, N do total = total + fs[i]:result() end
  local dt = futures.now() - t0
  assert(total == N * (N + 1) // 2 + N, total)
  return N / dt
end

local function map(ex)
  ex:submit(square, 0):result()
  local t0 = futures.now()
  local i = -1
  local function range()
    i = i + 1
    if i < M then return i end
  end
  local total = 0
  for _, v in ex:map(square, range, {chunksize = 1000}) do total = total + v end
  local dt = futures.now() - t0
  assert(total == (M - 1) * M * (2 * M - 1) // 6, total)
  return M / dt
end

do
  local ex <close> = mpi.MPIPoolExecutor()
  B.emit("MPI", "tasks_per_s", string.format("%.0f", tasks(ex)))
  B.emit("MPI", "map_items_per_s", string.format("%.0f", map(ex)))
end
do
  local ex <close> = futures.ProcessPoolExecutor(2)
  B.emit("MPI", "process_tasks_per_s", string.format("%.0f", tasks(ex)))
end
