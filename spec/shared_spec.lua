-- futures.shared(v): a read-only value encoded once, decoded once per state.
local support = require "support"
local futures = support.futures

local function is(class, err)
  assert(class:is(err), "expected " .. class.__name .. ", got " .. tostring(err))
end

-- Counts the calls of get() whose copy is fresh in the calling state: the
-- copy remembers, in a field of its own, how often it was seen.
local function bump(s)
  local t = s:get()
  t.seen = (t.seen or 0) + 1
  return t.seen, tostring(t), t.big[3]
end

describe("futures.shared", function()
  local value = {big = {10, 20, 30}, name = "input"}

  it("gives the main state one copy, equal to the value", function()
    local s = futures.shared(value)
    assert.matches("^<Shared at 0x%x+>$", tostring(s))
    local a, b = s:get(), s:get()
    assert.equal(a, b)
    assert.are_not.equal(value, a) -- a copy, not the table given
    assert.same(value, a)
    assert.equal(42, futures.shared(42):get())
    assert.is_nil(futures.shared(nil):get())
  end)

  it("gives a thread worker its own copy, kept across its tasks", function()
    local ex <close> = futures.ThreadPoolExecutor(1)
    local s = futures.shared(value)
    local mine = s:get()
    local n1, id1, x = ex:submit(bump, s):result()
    local n2, id2 = ex:submit(bump, s):result()
    local n3, id3 = ex:submit(function(t) return bump(t.s) end, {s = s}):result()
    assert.same({1, 2, 3}, {n1, n2, n3})
    assert.equal(id1, id2)
    assert.equal(id1, id3)
    assert.equal(30, x)
    assert.are_not.equal(tostring(mine), id1)
    assert.is_nil(mine.seen) -- the worker's changes stayed in the worker
    assert.equal(s, ex:submit(function(v) return v end, s):result())
  end)

  it("is decoded once per worker process", function()
    local ex <close> = futures.ProcessPoolExecutor(1)
    local s = futures.shared(value)
    local n1, id1, x = ex:submit(bump, s):result()
    local n2, id2 = ex:submit(bump, s):result()
    local n3 = ex:submit(function(t) return bump(t[1]) end, {s}):result()
    assert.same({1, 2, 3}, {n1, n2, n3})
    assert.equal(id1, id2)
    assert.equal(30, x)
    assert.is_nil(s:get().seen)
    -- twice in one task's arguments: one object there too
    assert.is_true(ex:submit(function(a, b) return a == b.s end, s, {s = s}):result())
    -- one that comes back from the worker holds the same value
    local back = ex:submit(function(v) return v end, s):result()
    assert.same(value, back:get())
  end)

  -- A table of n strings, some hundreds of kilobytes encoded.
  local function large(n)
    local t = {}
    for i = 1, n do t[i] = ("item %d "):format(i):rep(8) end
    return t
  end

  -- What one task carrying v inline costs a fresh pool: the bytes of v's
  -- encoding and a little more, which is the size of v's Shared payload
  -- give or take the same little.
  local function inline_cost(v)
    local ex <close> = futures.ProcessPoolExecutor(1)
    ex:submit(function(t) return #t end, v):result()
    return ex:stats().bytes_sent
  end

  -- A task that reads item j of the Shared's copy, counting in the copy
  -- how often its state used it: its process, the copy, the item, the
  -- count.
  local function use(v, j)
    local t = v:get()
    t.seen = (t.seen or 0) + 1
    local f = io.open("/proc/self/stat")
    local pid = f:read("n")
    f:close()
    return pid, tostring(t), t[j], t.seen
  end

  for _, method in ipairs{"spawn", "fork"} do
    it("sends its bytes to each worker process once (" .. method .. ")", function()
      if method == "fork" and not support.fork_ok then return pending(support.FORK_LIMIT) end
      local big = large(20000)
      local size = inline_cost(big)
      local s = futures.shared(big)
      local ex <close> = futures.ProcessPoolExecutor{max_workers = 2, start_method = method}
      local fs = {}
      for i = 1, 50 do -- by argument, or captured as an upvalue
        fs[i] = i % 2 == 0 and ex:submit(use, s, i)
                            or ex:submit(function(j) return use(s, j) end, i)
      end
      local copies, counts, workers = {}, {}, 0
      for i = 1, 50 do
        local pid, copy, item, n = fs[i]:result()
        assert.equal(big[i], item)
        if not copies[pid] then
          copies[pid], counts[pid], workers = copy, {}, workers + 1
        end
        assert.equal(copies[pid], copy) -- one copy per worker: decoded once
        counts[pid][#counts[pid] + 1] = n
      end
      for _, c in pairs(counts) do -- and it was that copy every time
        table.sort(c)
        for k = 1, #c do assert.equal(k, c[k]) end
      end
      local st = ex:stats()
      assert.equal(workers, st.shared_sent) -- the bytes went once to each
      assert.is_true(st.bytes_sent > size)
      assert.is_true(st.bytes_sent < 3 * size,
        ("%d bytes sent for a payload of about %d"):format(st.bytes_sent, size))
    end)
  end

  it("frees its bytes once collected, the pool's hold included", function()
    if support.sanitizer then return pending("a sanitizer's allocator keeps freed memory") end
    local function rss()
      for line in io.lines("/proc/self/status") do
        local kb = line:match("^VmRSS:%s*(%d+) kB")
        if kb then return tonumber(kb) * 1024 end
      end
    end
    local MB = 1 << 20
    local ex <close> = futures.ProcessPoolExecutor(1)
    local s = futures.shared({("x"):rep(64 * MB)})
    assert.equal(64 * MB, ex:submit(function(v) return #v:get()[1] end, s):result())
    support.collect()
    local held = rss()
    s = nil
    support.collect()
    local freed = held - rss()
    assert.is_true(freed > 48 * MB, ("%d bytes freed"):format(freed))
  end)

  it("breaks the pool of a worker that asks for a value its task lacks", function()
    local path = (os.getenv("LUAFUTURES_FAKE_DIR") or "build/fake") .. "/fake-need_unknown"
    assert(io.open(path), "no fake worker at " .. path .. " (make test builds it)"):close()
    local ex <close> = futures.ProcessPoolExecutor{worker = path, max_workers = 1}
    local err = ex:submit(function(v) return v:get() end, futures.shared(1)):exception()
    assert.is_true(futures.BrokenProcessPool:is(err), tostring(err))
    assert.matches("broke the protocol.*%(worker %d+ asked for Shared value 0xdeadbeef, "
      .. "which task %d+ does not hold%)$", tostring(err))
  end)

  it("refuses a value that cannot be transferred", function()
    local ok, e = pcall(futures.shared, {f = io.stdout})
    assert.is_false(ok)
    is(futures.TransferError, e)
    assert.matches("argument #1", tostring(e))
    ok, e = pcall(futures.shared, {q = futures.Queue()})
    assert.is_false(ok)
    is(futures.TransferError, e)
  end)

  it("checks its arguments as lauxlib does", function()
    local s = futures.shared(1)
    local ok, e = pcall(function() return s.get({}) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'get' %(Shared expected, got table%)", e)
    ok, e = pcall(futures.shared)
    assert.is_false(ok)
    assert.matches("bad argument #1 to '[%w.]*shared' %(value expected%)", e)
  end)
end)
