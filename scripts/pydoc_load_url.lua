-- 002 Python docs, "ThreadPoolExecutor Example": fetch pages in a thread
-- pool, checking exception() instead of catching the error of result().
-- Usage: lua5.4 scripts/pydoc_load_url.lua [BASE_URL]
-- Without BASE_URL it serves the pages itself from scripts/lib/httpserver.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local http = require "socket.http"
local httpserver = require "httpserver"

local server <close> = httpserver.start(arg[1])

-- The document's sites, served locally; the made-up domain fails with a
-- server error here.
local URLS = {
  server.url .. "/pages/www.foxnews.com/",
  server.url .. "/pages/www.cnn.com/",
  server.url .. "/pages/europe.wsj.com/",
  server.url .. "/pages/www.bbc.co.uk/",
  server.url .. "/status/500",  -- some-made-up-domain.com
}

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

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 5}
  local future_to_url = {}
  for _, url in ipairs(URLS) do
    future_to_url[executor:submit(load_url, url, 60)] = url
  end

  for future in futures.as_completed(future_to_url) do
    local url = future_to_url[future]
    if future:exception() ~= nil then
      print(("'%s' generated an exception: %s"):format(url, future:exception()))
    else
      print(("'%s' page is %d bytes"):format(url, #future:result()))
    end
  end
end
