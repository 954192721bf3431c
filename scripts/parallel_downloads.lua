-- 004 concurrent.futures tutorial, "Real-World Example: Parallel Downloads":
-- downloads with error handling and an overall timeout.
-- Usage: lua5.4 scripts/parallel_downloads.lua [BASE_URL]
-- Without BASE_URL it serves the pages itself from scripts/lib/httpserver.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local http = require "socket.http"
local httpserver = require "httpserver"

local SCALE = 1 / 10 -- the document's slow endpoint takes 5 s, its limit 15 s

local server <close> = httpserver.start(arg[1])

-- Download URL content with timeout; report errors instead of raising.
local function download(url, timeout)
  http.TIMEOUT = timeout or 10
  local body, code, _, status = http.request(url)
  if not body then return url, 0, code end
  if code ~= 200 then
    return url, 0, ("HTTP Error %d: %s"):format(code, status:match("^%S+ %d+ (.*)$"))
  end
  return url, #body, nil
end

-- The document's sites, served locally.
local urls = {
  server.url .. "/pages/www.python.org",
  server.url .. "/pages/www.github.com",
  server.url .. "/pages/www.google.com",
  server.url .. "/delay/" .. 5 * SCALE, -- Slow endpoint
}

print("Starting downloads...")
local start = futures.now()

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 4}
  local future_to_url = {}
  for _, url in ipairs(urls) do future_to_url[executor:submit(download, url)] = url end

  for future in futures.as_completed(future_to_url, 15 * SCALE) do
    local url, size, err = future:result()
    if err then
      print(("FAILED: %s - %s"):format(url, err))
    else
      print(("OK: %s - %d bytes"):format(url, size))
    end
  end
end

print(("Total time: %.2fs"):format(futures.now() - start))
