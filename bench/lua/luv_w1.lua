-- W1 on luv's thread pool (uv.new_work), for comparison: N trivial tasks
-- (x + 1) all queued, then uv.run() until every after-work callback ran.
-- UV_THREADPOOL_SIZE=2; the pool has run one task before the timing.
-- Usage: lua5.4 bench/lua/luv_w1.lua [N=100000]
local uv = require "luv"
-- libuv reads this when its pool starts, at the first queued work.
uv.os_setenv("UV_THREADPOOL_SIZE", "2")

local N = math.tointeger(tonumber(arg[1])) or 100000
local total, done = 0, 0
local work = uv.new_work(
  function(x) return x + 1 end,
  function(r) total = total + r; done = done + 1 end)

work:queue(0)
uv.run()
total, done = 0, 0

local t0 = uv.hrtime()
for i = 1, N do work:queue(i) end
uv.run()
local dt = (uv.hrtime() - t0) / 1e9
assert(done == N and total == N * (N + 1) // 2 + N, total)
print(string.format("W1 luv_tasks_per_s %.0f", N / dt))
