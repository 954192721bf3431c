-- 003 Fluent Python ch. 17, "Downloading with concurrent.futures": the flags
-- downloaded by a thread pool through executor:map().
-- Usage: lua5.4 scripts/flags_threadpool.lua [BASE_URL]
-- Without BASE_URL it serves the flags itself from scripts/lib/httpserver.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local flags = require "flags"

local site <close> = flags.site(arg[1])
local get_flag, save_flag = site.get_flag, site.save_flag

local MAX_WORKERS = 20

-- Runs in a worker: get_flag and save_flag are copied along with it.
local function download_one(cc)
  local image = get_flag(cc)
  save_flag(image, cc:lower() .. ".gif")
end

local function sorted(t)
  local copy = table.move(t, 1, #t, 1, {})
  table.sort(copy)
  return copy
end

local function download_many(cc_list)
  local workers = math.min(MAX_WORKERS, #cc_list)
  local res
  -- Closing the executor shuts it down and waits for every download.
  do
    local executor <close> = futures.ThreadPoolExecutor(workers)
    -- Like map() built in, but download_one runs in several threads at once.
    res = executor:map(download_one, sorted(cc_list))
  end
  return res:collect().n
end

site:main(download_many)
