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
