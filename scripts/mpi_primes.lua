-- The primes example of the Python docs ("ProcessPoolExecutor Example")
-- on the ranks of an MPI job, one machine or many:
--   mpiexec -n 3 luafutures -m concurrent.futures.mpi scripts/mpi_primes.lua
-- Rank 0 runs this script; the other ranks test the numbers. Run without
-- mpiexec, it uses a local process pool instead, and prints the same.
local futures = require "concurrent.futures"

local PRIMES = {
  112272535095293,
  112582705942171,
  112272535095293,
  115280095190773,
  115797848077099,
  1099726899285419,
}

local function is_prime(n)
  if n % 2 == 0 then return false end

  local sqrt_n = math.floor(math.sqrt(n))
  for i = 3, sqrt_n, 2 do
    if n % i == 0 then return false end
  end
  return true
end

-- Under mpiexec (Open MPI or MPICH say so in the environment) the ranks
-- serve; elsewhere MPI would start a job of one rank, with no workers.
local function executor()
  if os.getenv("OMPI_COMM_WORLD_SIZE") or os.getenv("PMI_SIZE") then
    return require("concurrent.futures.mpi").MPIPoolExecutor()
  end
  return futures.ProcessPoolExecutor()
end

local function main()
  local ex <close> = executor()
  for i, prime in ex:map(is_prime, PRIMES) do
    print(("%d is prime: %s"):format(PRIMES[i], prime))
  end
end

main()
