---@meta concurrent.futures.mpi
-- lua-language-server definitions of require "concurrent.futures.mpi"
-- (built when mpicc is found): executors over MPI ranks, as in
-- mpi4py.futures. Never run, only read by the editor.

---@class futures.MPIPoolOptions
---@field max_workers? integer at most N-1 ranks, default N-1
---@field initializer? fun(...) run once on each serving rank
---@field initargs? any[]
---@field isolate? boolean run each task in a supervised child (a crash is BrokenProcessPool)

---@class futures.MPICommOptions: futures.MPIPoolOptions
---@field root? integer the rank that gets the executor, default 0

---@class MPIPoolExecutor: Executor

---@class MPICommExecutor: Executor

---@class concurrent.futures.mpi
---@field rank integer this process's rank in the job
---@field size integer the number of ranks of the job
---@field host string this processor's name (MPI_Get_processor_name)
local mpi = {}

--- What `luafutures -m concurrent.futures.mpi script.lua` calls: rank 0
--- runs `chunk(...)`, the other ranks serve until it is done.
---@param chunk function
function mpi.main(chunk, ...) end

--- Rank 0's executor over ranks 1..N-1 (`mpiexec -n N luafutures -m concurrent.futures.mpi script.lua`).
---@param opts? futures.MPIPoolOptions
---@return MPIPoolExecutor
---@overload fun(max_workers: integer): MPIPoolExecutor
function mpi.MPIPoolExecutor(opts) end

--- Collective: the root gets the executor; the other ranks serve until
--- the root shuts it down, then get nil.
---@param opts? futures.MPICommOptions
---@return MPICommExecutor?
function mpi.MPICommExecutor(opts) end

return mpi
