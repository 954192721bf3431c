-- 001 "The concurrent.futures module", "Creating a Pool": download files in a
-- thread pool, printing each message as its download completes.
-- Usage: lua5.4 scripts/downloader_as_completed.lua [BASE_URL]
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

-- Downloads the specified URL and saves it to disk. Module tables (http,
-- ltn12) travel by name; DEST_DIR is copied with the function.
local function downloader(url)
  local filename = url:match("([^/]*)$")
  if not filename:match("%.%w+$") then
    error("RuntimeError: URL does not contain an extension", 0)
  end
  -- The sink writes each chunk as it arrives, like the document's read(1024) loop.
  local file = assert(io.open(DEST_DIR .. "/" .. filename, "wb"))
  local ok, code = http.request{url = url, sink = ltn12.sink.file(file)}
  if not ok then error(code, 0) end
  if code ~= 200 then error(("HTTP Error %d"):format(code), 0) end
  return ("Finished downloading %s"):format(filename)
end

-- Create a thread pool and download specified urls.
local function main(urls)
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 5}
  local fs = {}
  for i, url in ipairs(urls) do fs[i] = executor:submit(downloader, url) end
  -- print out results as they are completed
  for future in futures.as_completed(fs) do
    print(future:result())
  end
end

-- The document's IRS forms, served locally.
local urls = {}
for i, name in ipairs{"f1040.pdf", "f1040a.pdf", "f1040ez.pdf", "f1040es.pdf", "f1040sb.pdf"} do
  urls[i] = server.url .. "/files/irs-pdf/" .. name
end
main(urls)
