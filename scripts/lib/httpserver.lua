-- A small HTTP server for the download examples, so that they run against
-- 127.0.0.1 and never the internet. It serves generated content:
--
--   /flags/<cc>/<cc>.gif   a small deterministic "GIF" per known country code,
--                          404 for an unknown code
--   /pages/<name>          an HTML page whose size depends on <name>
--   /files/<name>.<ext>    a binary blob whose size depends on <name>
--   /delay/<seconds>       a page sent after that many seconds
--   /status/<code>         an empty answer with that status (403, 500, ...)
--   anything else          404
--
-- Every answer waits LATENCY seconds first, like a network round trip, so
-- that concurrent downloads visibly beat sequential ones. Each connection
-- runs in a coroutine over socket.select, so a slow answer (/delay) holds
-- up no other client.
--
-- As a program:  lua5.4 scripts/lib/httpserver.lua PORT [IDLE_SECONDS]
--   (it exits by itself after IDLE_SECONDS without a request, if given)
-- As a module:   local server <close> = require("httpserver").start(base_url)
--   starts the program as a child on a free port unless base_url is given;
--   server.url is the base URL; closing the object stops the child.

local socket = require "socket"

local LATENCY = 0.02

local COUNTRIES = {}
for cc in ("cn in us id br pk ng bd ru jp mx ph vn et eg de ir tr cd fr"):gmatch("%a+") do
  COUNTRIES[cc] = true
end

local REASONS = {
  [200] = "OK", [400] = "Bad Request", [403] = "Forbidden", [404] = "Not Found",
  [500] = "Internal Server Error", [503] = "Service Unavailable",
}

-- A string hash and a linear congruential generator: the same name always
-- gives the same bytes, so downloads can be checked.
local function hash(s)
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 2147483648 end
  return h
end

local function blob(name, size)
  local seed, out = hash(name), {}
  for i = 1, size do
    seed = (seed * 1103515245 + 12345) % 2147483648
    out[i] = string.char((seed >> 16) & 255)
  end
  return table.concat(out)
end

local function flag(cc)
  return "GIF89a" .. blob("flag:" .. cc, 500 + hash(cc) % 1500)
end

local function page(name)
  local words = {}
  for i = 1, 200 + hash(name) % 4000 do words[i] = "lorem" .. i % 97 end
  return ("<html><head><title>%s</title></head><body>%s</body></html>\n")
    :format(name, table.concat(words, " "))
end

-- Returns status, body, content type, and the delay before answering.
local function route(path)
  local cc, cc2 = path:match("^/flags/(%a%a)/(%a%a)%.gif$")
  if cc and cc == cc2 and COUNTRIES[cc] then return 200, flag(cc), "image/gif", 0 end
  local name = path:match("^/pages/(.+)$")
  if name then return 200, page(name), "text/html", 0 end
  name = path:match("^/files/(.+%.%w+)$")
  if name then
    return 200, blob("file:" .. name, 2000 + hash(name) % 30000), "application/octet-stream", 0
  end
  local secs = tonumber(path:match("^/delay/([%d.]+)$"))
  if secs then return 200, page("delay" .. secs), "text/html", secs end
  local code = tonumber(path:match("^/status/(%d%d%d)$"))
  if code then return code, "", "text/plain", 0 end
  return 404, "not found\n", "text/plain", 0
end

-- One connection: read the request head, wait, answer, close. Yields
-- ("read", sock), ("write", sock) or ("sleep", deadline) to the loop.
local function handle(c)
  local head = ""
  while true do
    local data, err, part = c:receive(8192)
    head = head .. (data or part)
    if head:find("\r\n\r\n", 1, true) then break end
    if err == "timeout" then
      coroutine.yield("read", c)
    elseif err then
      c:close()
      return
    end
  end
  local method, path = head:match("^(%u+) (%S+)")
  local code, body, ctype, delay = 400, "", "text/plain", 0
  if method == "GET" or method == "HEAD" then code, body, ctype, delay = route(path) end
  coroutine.yield("sleep", socket.gettime() + LATENCY + delay)
  if method == "HEAD" then body = "" end
  local reply = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
    .. "Connection: close\r\n\r\n%s"):format(code, REASONS[code] or "Unknown", ctype, #body, body)
  local i = 1
  while i <= #reply do
    local last, err, partial = c:send(reply, i)
    if last then
      i = last + 1
    elseif err == "timeout" then
      i = partial + 1
      coroutine.yield("write", c)
    else
      break
    end
  end
  c:close()
end

local function serve(port, idle)
  local server = assert(socket.bind("127.0.0.1", port))
  server:settimeout(0)
  local readers, writers = {}, {}  -- socket -> coroutine waiting on it
  local sleepers = {}              -- {deadline, coroutine}, unordered
  local last_request = socket.gettime()

  local function step(co)
    local ok, op, what = coroutine.resume(co)
    if not ok then
      io.stderr:write("httpserver: ", tostring(op), "\n")
    elseif op == "read" then
      readers[what] = co
    elseif op == "write" then
      writers[what] = co
    elseif op == "sleep" then
      sleepers[#sleepers + 1] = {what, co}
    end
  end

  local function keys(t, first)
    local list = {first}
    for k in pairs(t) do list[#list + 1] = k end
    return list
  end

  while true do
    local now = socket.gettime()
    -- Wake every coroutine whose sleep is over; keep the others.
    local due, wait = {}, nil
    for i = #sleepers, 1, -1 do
      local s = sleepers[i]
      if s[1] <= now then
        due[#due + 1] = s[2]
        table.remove(sleepers, i)
      else
        wait = math.min(wait or math.huge, s[1] - now)
      end
    end
    for _, co in ipairs(due) do step(co) end
    if idle then
      local left = last_request + idle - now
      if left <= 0 and next(readers) == nil and next(writers) == nil and #sleepers == 0 then
        break
      end
      wait = math.min(wait or math.huge, math.max(left, 0.1))
    end
    if #due == 0 then
      local r, w = socket.select(keys(readers, server), keys(writers), wait)
      for _, s in ipairs(r) do
        if s == server then
          local c = server:accept()
          if c then
            last_request = socket.gettime()
            c:settimeout(0)
            step(coroutine.create(function() handle(c) end))
          end
        elseif readers[s] then
          local co = readers[s]
          readers[s] = nil
          step(co)
        end
      end
      for _, s in ipairs(w) do
        local co = writers[s]
        if co then
          writers[s] = nil
          step(co)
        end
      end
    end
  end
  server:close()
end

-- Module side: start the program above as a child process.

local SELF = debug.getinfo(1, "S").source:match("^@(.*)$")

local Server = {}
Server.__index = Server

function Server:close()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
end
Server.__close = Server.close
Server.__gc = Server.close

local M = {}

function M.start(base_url)
  if base_url then return setmetatable({url = base_url:gsub("/+$", "")}, Server) end
  -- Ask the kernel for a free port, release it and hand it to the child.
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  local sh = io.popen(("lua5.4 '%s' %d 60 >/dev/null 2>&1 & echo $!"):format(SELF, port))
  local pid = tonumber(sh:read("l"))
  sh:close()
  local server = setmetatable({url = "http://127.0.0.1:" .. port, pid = pid}, Server)
  -- Ready once it accepts a connection; retry until then.
  local deadline = socket.gettime() + 10
  while true do
    local c = socket.connect("127.0.0.1", port)
    if c then
      c:close()
      return server
    end
    if socket.gettime() > deadline then
      server:close()
      error("httpserver did not start on port " .. port)
    end
    socket.sleep(0.005)
  end
end

if ... == "httpserver" then return M end

local port, idle = tonumber(arg[1]), tonumber(arg[2])
if not port then
  io.stderr:write("usage: lua5.4 httpserver.lua PORT [IDLE_SECONDS]\n")
  os.exit(2)
end
serve(port, idle)
