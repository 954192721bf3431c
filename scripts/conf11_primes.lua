-- needs: ProcessPoolExecutor
-- 000 concurrent.futures notebook, conf11.py (from the Python docs): test
-- large numbers for primality in a process pool.
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
  if n < 2 then return false end
  if n == 2 then return true end
  if n % 2 == 0 then return false end

  local sqrt_n = math.floor(math.sqrt(n))
  for i = 3, sqrt_n, 2 do
    if n % i == 0 then return false end
  end
  return true
end

local function main()
  local executor <close> = futures.ProcessPoolExecutor()
  -- map() yields the input index, which stands in for Python's zip().
  for i, prime in executor:map(is_prime, PRIMES) do
    print(("%d is prime: %s"):format(PRIMES[i], prime))
  end
end

main()
