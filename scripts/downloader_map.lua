-- 001 "The concurrent.futures module", "Creating a Pool" with map() instead
-- of submit(): results come back in the order of the urls.
-- Usage: lua5.4 scripts/downloader_map.lua [BASE_URL]
-- Without BASE_URL it serves the files itself from scripts/lib/httpserver.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local http = require "socket.http"
local ltn12 = require "ltn12"
local httpserver = require "httpserver"
local tmpdir = require "tmpdir"

local server <close> = httpserver.start(arg[1])
local dest <close> = tmpdir.new()  -- the document saves into the current directory
local DEST_DIR = dest.path

-- Downloads the specified URL and saves it to disk.
local function downloader(url)
  local filename = url:match("([^/]*)$")
  if not filename:match("%.%w+$") then
    error("RuntimeError: URL does not contain an extension", 0)
  end
  local file = assert(io.open(DEST_DIR .. "/" .. filename, "wb"))
  local ok, code = http.request{url = url, sink = ltn12.sink.file(file)}
  if not ok then error(code, 0) end
  if code ~= 200 then error(("HTTP Error %d"):format(code), 0) end
  return ("Finished downloading %s"):format(filename)
end

-- As in the document, the executor is shut down (waiting) on return, and
-- the map iterator still hands out the results afterwards.
local function main(urls)
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 5}
  return executor:map(downloader, urls, {timeout = 60, chunksize = 8})
end

local urls = {}
for i, name in ipairs{"f1040.pdf", "f1040a.pdf", "f1040ez.pdf", "f1040es.pdf", "f1040sb.pdf"} do
  urls[i] = server.url .. "/files/irs-pdf/" .. name
end
local results = main(urls)
for _, result in results do
  print(result)
end
