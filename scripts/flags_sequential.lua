-- 003 Fluent Python ch. 17, "A Sequential Download Script": download the
-- flags of the 20 most populous countries one after the other.
-- Usage: lua5.4 scripts/flags_sequential.lua [BASE_URL]
-- Without BASE_URL it serves the flags itself from scripts/lib/httpserver.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local flags = require "flags"

local site <close> = flags.site(arg[1])
local get_flag, save_flag, show = site.get_flag, site.save_flag, flags.show

local function download_many(cc_list)
  for _, cc in ipairs(cc_list) do
    local image = get_flag(cc)
    show(cc)
    save_flag(image, cc:lower() .. ".gif")
  end
  return #cc_list
end

site:main(download_many)
