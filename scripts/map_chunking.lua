-- needs: ProcessPoolExecutor
-- 004 concurrent.futures tutorial, "Map with Chunking": chunksize cuts the
-- per-item cost of a process pool.
local futures = require "concurrent.futures"

local function process_item(x)
  return x * x
end

-- The document maps 100000 items; 20000 keep this script fast.
local items = {}
for i = 1, 20000 do items[i] = i - 1 end

-- Without chunking - more IPC overhead
local start = futures.now()
local plain
do
  local executor <close> = futures.ProcessPoolExecutor{max_workers = 4}
  plain = executor:map(process_item, items):collect()
end
print(("No chunking: %.2fs"):format(futures.now() - start))

-- With chunking - less IPC overhead
start = futures.now()
local chunked
do
  local executor <close> = futures.ProcessPoolExecutor{max_workers = 4}
  chunked = executor:map(process_item, items, {chunksize = 1000}):collect()
end
print(("With chunking: %.2fs"):format(futures.now() - start))

-- Not in the document: check that both give every square in order.
local same = plain.n == #items and chunked.n == #items
for i = 1, #items do
  same = same and plain[i] == (i - 1) * (i - 1) and chunked[i] == plain[i]
end
print(("results: %d items, in order: %s"):format(chunked.n, same))
