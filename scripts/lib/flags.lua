-- The parts the flag download scripts share, as flags.py does in Fluent
-- Python's chapter 17: the country codes, get_flag, save_flag, show, main.
--
--   local flags = require "flags"
--   local site <close> = flags.site(arg[1])   -- server (unless a base URL is
--                                             -- given) and scratch directory
--   site.get_flag(cc), site.save_flag(img, filename), flags.show(text)
--   site:main(download_many)
--
-- get_flag and save_flag are closures over the base URL and the directory,
-- so a task that calls them carries both along to its worker.

local http = require "socket.http"
local socket = require "socket"
local httpserver = require "httpserver"
local tmpdir = require "tmpdir"
local print = require "lineprint" -- whole lines from every thread

local M = {}

M.POP20_CC = {}
for cc in ("CN IN US ID BR PK NG BD RU JP MX PH VN ET EG DE IR TR CD FR"):gmatch("%u+") do
  M.POP20_CC[#M.POP20_CC + 1] = cc
end

function M.show(text)
  io.write(text, " ")
  io.flush()
end

local Site = {}
Site.__index = Site

function Site:close()
  self.dest:close()
  self.server:close()
end
Site.__close = Site.close

-- Runs download_many over POP20_CC and reports the count and the time, then
-- checks that every flag landed in the directory (not in the book).
function Site:main(download_many)
  local t0 = socket.gettime()
  local count = download_many(M.POP20_CC)
  local elapsed = socket.gettime() - t0
  print(("\n%d flags downloaded in %.2fs"):format(count, elapsed))
  local saved = 0
  for _, cc in ipairs(M.POP20_CC) do
    local f = io.open(self.dest:join(cc:lower() .. ".gif"), "rb")
    if f then
      if f:read(6) == "GIF89a" then saved = saved + 1 end
      f:close()
    end
  end
  print(("%d flags saved"):format(saved))
end

function M.site(base_url)
  local server = httpserver.start(base_url)
  local dest = tmpdir.new()
  local BASE_URL, DEST_DIR = server.url .. "/flags", dest.path

  local function save_flag(img, filename)
    local fp = assert(io.open(DEST_DIR .. "/" .. filename, "wb"))
    fp:write(img)
    fp:close()
  end

  local function get_flag(cc)
    local url = ("%s/%s/%s.gif"):format(BASE_URL, cc:lower(), cc:lower())
    print(("download %s"):format(url))
    local body, code = http.request(url)
    if not body then error(code, 0) end
    if code ~= 200 then error(("HTTP Error %d for %s"):format(code, url), 0) end
    return body
  end

  return setmetatable({server = server, dest = dest, get_flag = get_flag, save_flag = save_flag},
    Site)
end

return M
