-- needs: ProcessPoolExecutor
-- 004 concurrent.futures tutorial, "ProcessPoolExecutor Basics": CPU-bound
-- work, sequential and then in parallel processes.
local futures = require "concurrent.futures"

-- The document sums squares below 10^7, a bignum in Python; Lua integers are
-- 64-bit and that sum overflows them, so n is 3 * 10^6, whose sum still fits.
local function cpu_intensive(n)
  local s = 0
  for i = 0, n - 1 do s = s + i * i end
  return s
end

local numbers = {3000000, 3000000, 3000000, 3000000}

-- Sequential
local start = futures.now()
local sequential = {}
for i, n in ipairs(numbers) do sequential[i] = cpu_intensive(n) end
print(("Sequential: %.2fs"):format(futures.now() - start))

-- Parallel with processes
start = futures.now()
local results
do
  local executor <close> = futures.ProcessPoolExecutor{max_workers = 4}
  results = executor:map(cpu_intensive, numbers):collect()
end
print(("Parallel: %.2fs"):format(futures.now() - start))

-- Not in the document: show that both ways computed the same sums.
print(("results: %d (x%d), same: %s"):format(results[1], results.n,
  table.concat(results, ",") == table.concat(sequential, ",")))
