-- S1: one futures.shared table of about 5 MB used by 1,000 tasks on a pool
-- of 2, thread and process. Each task reads one item of the state's copy
-- and reports which state it ran in and which copy it got, so the decodes
-- are counted from what the workers saw (a state decodes once: its copies
-- are one table). The process pool's ex:stats() counts the bytes sent to
-- its workers (tasks and Shared values) and the Shared values sent; the
-- payload's size is what one task carrying the table inline costs a fresh
-- pool. A thread pool sends no bytes (the Shared travels as a handle).
-- Prints: S1 thread_decodes D process_decodes D process_shared_sent N
--         process_bytes_sent B process_payload_bytes P
--         process_copies_per_worker C  (B / (P * workers that decoded))
-- Usage: lua5.4 bench/lua/shared.lua [TASKS=1000] [MB=5]
package.cpath = "./?.so;" .. package.cpath
package.path = "./bench/lua/?.lua;" .. package.path
local futures = require "concurrent.futures"
local B = require "benchlib"

local TASKS = math.tointeger(tonumber(arg[1])) or 1000
local MB = tonumber(arg[2]) or 5

-- About MB megabytes once encoded: strings of 100 bytes.
local big = {}
for i = 1, math.floor(MB * (1 << 20) / 105) do
  big[i] = ("%-99s."):format(i)
end
local s = futures.shared(big)

-- The task: its state (process id and thread name), its copy, an item.
local function use(v, j)
  local t = v:get()
  local f = io.open("/proc/self/stat")
  local pid = f:read("n")
  f:close()
  return pid .. "/" .. require("concurrent.futures").thread_name(), tostring(t),
         t[(j - 1) % #t + 1]
end

-- Runs the tasks on ex; the number of distinct (state, copy) pairs seen.
local function run(ex)
  local fs = {}
  for j = 1, TASKS do fs[j] = ex:submit(use, s, j) end
  local seen, n = {}, 0
  for j = 1, TASKS do
    local where, copy, item = fs[j]:result()
    assert(item == big[(j - 1) % #big + 1])
    local k = where .. " " .. copy
    if not seen[k] then seen[k], n = true, n + 1 end
  end
  return n
end

local out = {}
do
  local ex <close> = futures.ThreadPoolExecutor(2)
  out[#out + 1] = "thread_decodes " .. run(ex)
end

if futures.ProcessPoolExecutor then
  local payload
  do
    local ex <close> = futures.ProcessPoolExecutor(1)
    ex:submit(function(t) return #t end, big):result()
    payload = ex:stats().bytes_sent
  end
  local ex <close> = futures.ProcessPoolExecutor(2)
  local decodes = run(ex)
  local st = ex:stats()
  out[#out + 1] = ("process_decodes %d process_shared_sent %d process_bytes_sent %d "
    .. "process_payload_bytes %d process_copies_per_worker %.3f"):format(
    decodes, st.shared_sent, st.bytes_sent, payload,
    st.bytes_sent / (payload * decodes))
end
B.emit("S1", table.concat(out, " "))
