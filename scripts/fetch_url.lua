-- 004 concurrent.futures tutorial, "ThreadPoolExecutor Basics": three
-- simulated fetches, sequential and then in a thread pool.
local futures = require "concurrent.futures"

local DELAY = 0.2 -- the document simulates 1 s of network delay

local function fetch_url(url)
  futures.sleep(DELAY) -- Simulate network delay
  return ("Content from %s"):format(url)
end

local urls = {"http://site1.com", "http://site2.com", "http://site3.com"}

-- Sequential - takes ~0.6 seconds
local start = futures.now()
local results = {}
for i, url in ipairs(urls) do results[i] = fetch_url(url) end
print(("Sequential: %.2fs"):format(futures.now() - start))

-- Concurrent - takes ~0.2 seconds
start = futures.now()
do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 3}
  results = executor:map(fetch_url, urls):collect()
end
print(("Concurrent: %.2fs"):format(futures.now() - start))
