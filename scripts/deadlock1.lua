-- needs: DeadlockError
-- 000 concurrent.futures notebook deadlock1.py, and 002 Python docs
-- "ThreadPoolExecutor Objects" first deadlock: two tasks wait on each other.
-- Python hangs; luafutures raises DeadlockError in one waiter, and the other
-- then fails with that error too.
local futures = require "concurrent.futures"

local SCALE = 1 / 25 -- the document sleeps 5 s

-- Python's tasks read the globals a and b when they run. A Lua task gets
-- copies of its upvalues when it is submitted, before b exists, so
-- wait_on_b receives b through an unbound Future that main resolves later.
local function wait_on_b(b_box)
  futures.sleep(5 * SCALE)
  local b = b_box:result()
  print(b:result()) -- b will never complete because it is waiting on a.
  return 5
end

local function wait_on_a(a)
  futures.sleep(5 * SCALE)
  print(a:result()) -- a will never complete because it is waiting on b.
  return 6
end

local executor = futures.ThreadPoolExecutor{max_workers = 2}
local b_box = futures.Future()
local a = executor:submit(wait_on_b, b_box)
local b = executor:submit(wait_on_a, a)
b_box:set_result(b)
-- Give the lazily started workers a moment to pick the tasks up.
futures.sleep(0.05)
print(a:running())
print(b:running())

for _, case in ipairs{{"a", a}, {"b", b}} do
  local f = case[2]
  local ok, err = pcall(f.result, f)
  print(("%s: %s"):format(case[1], ok and err or tostring(err)))
end
