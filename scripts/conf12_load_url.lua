-- 000 concurrent.futures notebook, conf12.py (from the Python docs): fetch
-- pages in a thread pool, reporting each as it completes.
-- Usage: lua5.4 scripts/conf12_load_url.lua [BASE_URL]
-- Without BASE_URL it serves the pages itself from scripts/lib/httpserver.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local http = require "socket.http"
local httpserver = require "httpserver"

local server <close> = httpserver.start(arg[1])

-- The document's sites, served locally; two fail as in its output.
local URLS = {
  server.url .. "/pages/www.foxnews.com/",
  server.url .. "/pages/www.cnn.com/",
  server.url .. "/status/403",                        -- europe.wsj.com
  server.url .. "/pages/www.bbc.co.uk/",
  server.url .. "/missing/some-made-up-domain.com/",  -- 404
}

-- Retrieve a single page and report the URL and contents.
-- socket.http is sent by name: each worker requires its own copy.
local function load_url(url, timeout)
  http.TIMEOUT = timeout
  local body, code, _, status = http.request(url)
  if not body then error(code, 0) end -- a network error: code is its message
  if code ~= 200 then
    error(("HTTP Error %d: %s"):format(code, status:match("^%S+ %d+ (.*)$")), 0)
  end
  return body
end

-- A to-be-closed executor makes sure threads are cleaned up promptly.
do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 5}
  -- Start the load operations and mark each future with its URL.
  local future_to_url = {}
  for _, url in ipairs(URLS) do
    future_to_url[executor:submit(load_url, url, 60)] = url
  end
  for future in futures.as_completed(future_to_url) do
    local url = future_to_url[future]
    local ok, data = pcall(future.result, future)
    if not ok then
      print(("'%s' generated an exception: %s"):format(url, data))
    else
      print(("'%s' page is %d bytes"):format(url, #data))
    end
  end
end
