-- 002 Python docs, "Executor.shutdown": copy files in a pool; leaving the
-- block waits for every copy, like Python's `with`.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/lib/?.lua;" .. package.path
local futures = require "concurrent.futures"
local tmpdir = require "tmpdir"

-- Lua has no shutil.copy; this copies in 8 KiB blocks.
local function copy(src, dst)
  local from = assert(io.open(src, "rb"))
  local to = assert(io.open(dst, "wb"))
  for block in from:lines(8192) do to:write(block) end
  from:close()
  to:close()
end

-- The document copies src*.txt in the current directory; these are made in
-- a scratch directory that is removed at the end.
local dir <close> = tmpdir.new()
for i = 1, 3 do
  local f = assert(io.open(dir:join(("src%d.txt"):format(i)), "w"))
  f:write(("contents of source file %d\n"):format(i):rep(1000 * i))
  f:close()
end

do
  local e <close> = futures.ThreadPoolExecutor{max_workers = 4}
  e:submit(copy, dir:join("src1.txt"), dir:join("dest1.txt"))
  e:submit(copy, dir:join("src2.txt"), dir:join("dest2.txt"))
  e:submit(copy, dir:join("src3.txt"), dir:join("dest3.txt"))
  e:submit(copy, dir:join("src3.txt"), dir:join("dest4.txt"))
end

-- Not in the document: show that every copy is complete once the block ends.
local function read(name)
  local f = assert(io.open(dir:join(name), "rb"))
  local s = f:read("a")
  f:close()
  return s
end
for i, src in ipairs{"src1.txt", "src2.txt", "src3.txt", "src3.txt"} do
  local dst = ("dest%d.txt"):format(i)
  print(("%s -> %s: %d bytes, %s"):format(src, dst, #read(dst),
    read(dst) == read(src) and "identical" or "DIFFERENT"))
end
