-- needs: Queue
-- A two-stage pipeline over futures.Queue: one thread pool downloads pages
-- into a bounded queue, a second pool parses them as they arrive. The bound
-- makes the downloaders wait whenever the parsers fall behind.
-- Usage: lua5.4 scripts/pipeline.lua [BASE_URL]
-- Without BASE_URL it serves the pages itself from scripts/lib/httpserver.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local http = require "socket.http"
local httpserver = require "httpserver"

local server <close> = httpserver.start(arg[1])

local NAMES = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}

-- Stage 1: fetch one page and queue it (this blocks while the queue is full).
local function download(url, pages)
  local body, code = http.request(url)
  if code ~= 200 then error(("HTTP Error %s for %s"):format(code, url), 0) end
  pages:put({url = url, body = body})
end

-- Stage 2: parse pages until the queue is shut down; each page is marked
-- done so that the main state's join() knows when all are parsed.
local function parse(pages)
  local parsed = {}
  for page in pages:iter() do
    local title = page.body:match("<title>(.-)</title>")
    local _, words = page.body:gsub("lorem%d+", "")
    parsed[#parsed + 1] = ("%s: title %q, %d words, parsed by %s")
      :format(page.url:match("[^/]+$"), title, words, futures.thread_name())
    pages:task_done()
  end
  return parsed
end

local pages = futures.Queue(3)
local downloaders <close> = futures.ThreadPoolExecutor{max_workers = 4, thread_name_prefix = "download"}
local parsers <close> = futures.ThreadPoolExecutor{max_workers = 2, thread_name_prefix = "parse"}

local parsing = {}
for i = 1, 2 do parsing[i] = parsers:submit(parse, pages) end
local fetching = {}
for i, name in ipairs(NAMES) do
  fetching[i] = downloaders:submit(download, server.url .. "/pages/" .. name, pages)
end
for _, f in ipairs(fetching) do f:result() end -- re-raises a failed download
pages:join()     -- every page queued has been parsed
pages:shutdown() -- ends the parsers' loops

local lines = {}
for _, f in ipairs(parsing) do
  for _, line in ipairs(f:result()) do lines[#lines + 1] = line end
end
table.sort(lines)
for _, line in ipairs(lines) do print(line) end
