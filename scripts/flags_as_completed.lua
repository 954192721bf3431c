-- 003 Fluent Python ch. 17, "Where Are the Futures?": executor:map() replaced
-- by two loops, one submitting futures and one collecting them as they finish.
-- Usage: lua5.4 scripts/flags_as_completed.lua [BASE_URL]
-- Without BASE_URL it serves the flags itself from scripts/lib/httpserver.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local flags = require "flags"

local site <close> = flags.site(arg[1])
local get_flag, save_flag = site.get_flag, site.save_flag

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
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 3}
  local to_do = {}
  for _, cc in ipairs(sorted(cc_list)) do
    local future = executor:submit(download_one, cc)
    to_do[#to_do + 1] = future
  end

  -- The notebook writes future.as_complete(to_do); the function is
  -- futures.as_completed. Python collects the (None) results in a list and
  -- returns its length; a Lua table cannot hold nils, so this counts them.
  local results = 0
  for future in futures.as_completed(to_do) do
    future:result() -- raises if the download failed
    results = results + 1
  end
  return results
end

site:main(download_many)
