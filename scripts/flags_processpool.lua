-- needs: ProcessPoolExecutor
-- 003 Fluent Python ch. 17, "Launching Processes with concurrent.futures":
-- the thread pool download with ProcessPoolExecutor in its place.
-- Usage: lua5.4 scripts/flags_processpool.lua [BASE_URL]
-- Without BASE_URL it serves the flags itself from scripts/lib/httpserver.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local flags = require "flags"

local site <close> = flags.site(arg[1])
local get_flag, save_flag = site.get_flag, site.save_flag

-- Runs in a worker process, which loads socket.http itself.
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
  local res
  do
    -- One worker process per CPU by default.
    local executor <close> = futures.ProcessPoolExecutor()
    res = executor:map(download_one, sorted(cc_list))
  end
  return res:collect().n
end

site:main(download_many)
