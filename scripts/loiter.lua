-- 003 Fluent Python ch. 17, "Experimenting with Executor.map": map() hands
-- out results in call order, each as soon as it and those before it are done.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local print = require "lineprint" -- whole lines from every thread

local SCALE = 1 / 5 -- the document sleeps n seconds

-- The document stamps lines with the clock ([09:52:22]); with scaled sleeps
-- whole seconds would not move, so lines carry seconds since the start.
local START = futures.now()

local function display(...)
  local words = table.pack(...)
  for i = 1, words.n do words[i] = tostring(words[i]) end
  print(("[%5.2fs] %s"):format(futures.now() - START, table.concat(words, " ")))
end

local function loiter(n)
  local msg = "%sloiter(%d): doing nothing for %ds..."
  display(msg:format(("\t"):rep(n), n, n))
  futures.sleep(n * SCALE)
  msg = "%sloiter(%d): done."
  display(msg:format(("\t"):rep(n), n))
  return n * 10
end

local function main()
  display("Script starting")
  local executor = futures.ThreadPoolExecutor{max_workers = 3}
  local results = executor:map(loiter, {0, 1, 2, 3, 4})
  display("results:", results)
  for i, result in results do
    display(("result %d: %d"):format(i - 1, result))
  end
end

main()
