-- What a worker state holds: the standard libraries of the `libs` option,
-- and the light userdata a host passes (pointers, for one process only).
local support = require "support"
local futures = support.futures
local cjson = require "cjson" -- cjson.null is a light userdata

local KINDS = {
  ThreadPoolExecutor = futures.ThreadPoolExecutor,
  ProcessPoolExecutor = futures.ProcessPoolExecutor,
}

local function present() -- with base functions only
  local s = ""
  for _, name in ipairs{"coroutine", "table", "io", "os", "string", "math", "utf8", "debug"} do
    if _G[name] then s = s == "" and name or s .. " " .. name end
  end
  return s, type(print), type(require)
end

describe("the executor option libs", function()
  after_each(support.collect)

  for kind, new in pairs(KINDS) do
    it("opens only the libraries named, and always base and package, in a " .. kind, function()
      local ex <close> = new{max_workers = 1, libs = {"string", "math"}}
      assert.same({"string math", "function", "function"}, {ex:submit(present):result()})
    end)

    it("opens every library by default in a " .. kind, function()
      local ex <close> = new(1)
      assert.equal("coroutine table io os string math utf8 debug", (ex:submit(present):result()))
    end)

    it("refuses an unknown library name in a " .. kind, function()
      local head = "^bad argument #1 to '[%w.]*" .. kind .. "' "
      assert.matches(head .. "%(unknown library 'sockets' in 'libs'%)$",
                     support.error_of(new, {libs = {"base", "sockets"}}))
      assert.matches(head .. "%('libs' must be an array of library names%)$",
                     support.error_of(new, {libs = "os"}))
      assert.matches(head .. "%(unknown library '1' in 'libs'%)$",
                     support.error_of(new, {libs = {1}}))
    end)
  end
end)

describe("light userdata", function()
  after_each(support.collect)

  it("travel as they are between the states of one process", function()
    local ex <close> = futures.ThreadPoolExecutor(1)
    local back, t = ex:submit(function(p) return p, type(p) end, cjson.null):result()
    assert.equal(cjson.null, back)
    assert.equal("userdata", t)
    assert.equal(cjson.null, ex:submit(function(t) return t.p end, {p = cjson.null}):result())
  end)

  it("cannot leave the process: a TransferError that says why", function()
    local ex <close> = futures.ProcessPoolExecutor(1)
    local err = support.error_of(ex.submit, ex, print, {p = cjson.null})
    assert.is_true(futures.TransferError:is(err))
    assert.equal("cannot transfer argument #2 (field 'p'): light userdata (a pointer cannot leave its process)",
                 err.message)
  end)
end)
