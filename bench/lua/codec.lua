-- W9: the codec.
-- records: 100,000 small records ({id, name, price, tags}) put on a Queue
--          and got back in one state (one encode, one decode), seconds,
--          beside lua-cjson's decode(encode(t)) of the same table; the
--          median of 5 of each, alternated.
-- floats:  1,000,000 floats sent to a ProcessPoolExecutor(1) worker and
--          returned (encoded and decoded both ways), seconds, median of 5.
-- deep:    a table nested 1,000 deep travels to a thread worker and back.
-- Usage: lua5.4 bench/lua/codec.lua records|floats|deep [N]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local mode = arg[1]
local N = math.tointeger(tonumber(arg[2]))

local function median5(f)
  local t = {}
  for k = 1, 5 do t[k] = f() end
  table.sort(t)
  return t[3]
end

if mode == "records" then
  local cjson = require "cjson"
  N = N or 100000
  local recs = {}
  for i = 1, N do
    recs[i] = {id = i, name = "item" .. i, price = i * 0.25, tags = {"a", "b"}}
  end
  local q = futures.Queue()
  local function ours()
    local t0 = futures.now()
    q:put(recs)
    local back = q:get()
    local dt = futures.now() - t0
    assert(#back == N and back[N].name == "item" .. N)
    return dt
  end
  local function theirs()
    local t0 = futures.now()
    local back = cjson.decode(cjson.encode(recs))
    local dt = futures.now() - t0
    assert(#back == N and back[N].name == "item" .. N)
    return dt
  end
  local a, b = {}, {}
  for k = 1, 5 do a[k] = ours(); b[k] = theirs() end
  table.sort(a); table.sort(b)
  B.emit("W9r", string.format("records_s %.4f cjson_s %.4f", a[3], b[3]))
elseif mode == "floats" then
  B.need_process_pool(futures, "W9f")
  N = N or 1000000
  local xs = {}
  for i = 1, N do xs[i] = i * 0.5 end
  local ex <close> = futures.ProcessPoolExecutor(1)
  local function echo(t) return t end
  ex:submit(echo, 0):result()
  local s = median5(function()
    local t0 = futures.now()
    local back = ex:submit(echo, xs):result()
    local dt = futures.now() - t0
    assert(#back == N and back[N] == N * 0.5)
    return dt
  end)
  B.emit("W9f", string.format("floats_s %.4f", s))
elseif mode == "deep" then
  N = N or 1000
  local t = {}
  local cur = t
  for _ = 1, N do cur.next = {}; cur = cur.next end
  local ex <close> = futures.ThreadPoolExecutor(1)
  local back = ex:submit(function(x) return x end, t):result()
  local depth = 0
  while back.next do back = back.next; depth = depth + 1 end
  assert(depth == N, depth)
  B.emit("W9d", string.format("depth %d", depth))
else
  error("usage: codec.lua records|floats|deep [N]")
end
