local support = require "support"
local futures = support.futures

describe("values between states", function()
  local ex
  setup(function() ex = futures.ThreadPoolExecutor(1) end)
  teardown(function() ex:shutdown() ex = nil support.collect() end)

  local function echo(...) return ex:submit(function(...) return ... end, ...):result() end

  it("round-trips scalars, keeping integers integers", function()
    local a, b, c, d, e, f, g = echo(nil, true, false, 42, 2^53, 1.5, -0.0)
    assert.is_nil(a) assert.is_true(b) assert.is_false(c)
    assert.equal("integer", math.type(d)) assert.equal(42, d)
    assert.equal("float", math.type(e))
    assert.equal(1.5, f)
    assert.equal(math.maxinteger, (echo(math.maxinteger)))
    assert.equal(math.mininteger, (echo(math.mininteger)))
    assert.equal("float", math.type((echo(3.0))))
    assert.is_true((echo(0/0)) ~= (echo(0/0))) -- NaN stays NaN
    assert.equal(math.huge, (echo(math.huge)))
  end)

  -- One number or boolean is the common result and is read without the
  -- decoder (bindings/outcome.c); its stamp (who ran it, and when under a
  -- trace) follows it in the payload.
  it("returns one scalar result with its type kept, traced or not", function()
    local values = {42, -7, math.maxinteger, math.mininteger, 2^40 // 1, 1.5, 3.0,
                    -0.0, math.huge, true, false}
    local px <close> = futures.ProcessPoolExecutor(1)
    local trace = os.tmpname()
    for round = 1, 2 do
      if round == 2 then futures.trace(trace) end
      for _, pool in ipairs{ex, px} do
        for _, v in ipairs(values) do
          local r = pool:submit(function(x) return x end, v):result()
          assert.equal(v, r)
          assert.equal(math.type(v), math.type(r))
          if v == 0 then assert.equal(1 / v, 1 / r) end -- the sign of -0.0
        end
        assert.equal(1, select("#", pool:submit(function() return 5 end):result()))
        assert.is_nil(pool:submit(function() return nil end):result())
        assert.equal(0, select("#", pool:submit(function() end):result()))
      end
    end
    futures.trace(false)
    os.remove(trace)
    px:shutdown()
  end)

  it("keeps trailing nils in argument and result counts", function()
    local n = ex:submit(function(...) return select("#", ...) end, 1, nil, nil):result()
    assert.equal(3, n)
    assert.equal(3, select("#", echo(1, nil, nil)))
  end)

  it("copies strings binary-safe, a 1 MB string included", function()
    local s = string.rep("\0\1\255abc", 200000)
    assert.equal(#s, #(echo(s)))
    assert.equal(s, (echo(s)))
    assert.equal("", (echo("")))
  end)

  it("copies big values, several at once, in blocks used again", function()
    -- Past a megabyte a payload is built in a block that becomes the payload
    -- and goes back to a cache when freed: the bytes of every one stay its
    -- own, whichever pool, order or size, and a function inside still runs.
    local px <close> = futures.ProcessPoolExecutor(2)
    local function make(seed, n)
      local t = {tag = "t" .. seed}
      for i = 1, n do t[i] = seed + i * 0.5 end
      t.s = string.rep(string.char(65 + seed % 26), n // 3)
      return t
    end
    local function check(t, seed, n)
      assert.equal("t" .. seed, t.tag)
      assert.equal(n, #t)
      for i = 1, n, 997 do assert.equal(seed + i * 0.5, t[i]) end
      assert.equal(seed + n * 0.5, t[n])
      assert.equal(string.rep(string.char(65 + seed % 26), n // 3), t.s)
    end
    for _, pool in ipairs{ex, px} do
      local fs, sizes = {}, {300000, 150000, 600000, 150000, 20, 300000}
      for k, n in ipairs(sizes) do
        local t = make(k, n)
        t.f = function(x) return x * 2 end
        fs[k] = pool:submit(function(v) v.doubled = v.f(#v) v.f = nil return v end, t)
      end
      for k = #fs, 1, -1 do
        local back = fs[k]:result()
        check(back, k, sizes[k])
        assert.equal(2 * sizes[k], back.doubled)
      end
    end
    px:shutdown()
  end)

  it("copies nested tables with integer and float keys kept", function()
    local t = {1, 2, {x = {y = "z"}}, [1.5] = "f", [10] = "ten", [true] = "yes"}
    local r = echo(t)
    assert.same(t, r)
    assert.is_false(r == t) -- a copy
    assert.equal("f", r[1.5])
    assert.equal("integer", math.type(next({[10] = 1})))
  end)

  -- The encoder writes the array as lua_next gives it while the keys run
  -- 1, 2, 3 ... and reads the rest by index (bindings/encode.c): each
  -- shape below leaves that run in another place.
  it("copies tables whose elements live in the hash part, with holes and odd keys", function()
    local back = {x = 1, y = 2, z = 3}
    for i = 6, 1, -1 do back[i] = i * 10 end -- built downwards: the hash part
    local holes = {1, 2, nil, 4, nil, nil, 7}
    local mixed = {"a", "b", "c", ["1"] = "string one", [-1] = "minus", [0] = "zero",
                   [2.5] = "half", [100] = "far"}
    local grown = {}
    for i = 1, 40 do grown[i] = i end
    grown.tag = "t"
    for i = 41, 45 do grown[i] = i end -- past the array part, after a hash key
    for _, t in ipairs{back, holes, mixed, grown} do
      local r = echo(t)
      assert.same(t, r)
      assert.equal(#t, #r)
    end
    assert.equal("string one", echo(mixed)["1"])
    assert.equal("a", echo(mixed)[1])
  end)

  it("keeps shared references and cycles within one submit", function()
    local shared = {}
    local t = {a = shared, b = shared}
    t.self = t
    local r, again = echo(t, shared)
    assert.equal(r.a, r.b)
    assert.equal(r, r.self)
    assert.equal(r.a, again) -- a table passed twice arrives as one table
  end)

  it("copies Lua functions with their upvalues by value", function()
    local base = 10
    local add = function(x) return x + base end
    assert.equal(15, ex:submit(function(f) return f(5) end, add):result())
    local counter = 0
    local inc = function() counter = counter + 1 return counter end
    ex:submit(inc):result()
    assert.equal(0, counter) -- the worker changed its own copy
  end)

  it("rebinds _ENV to the worker's globals", function()
    ex:submit(function() mark = "worker" end):result()
    assert.is_nil(rawget(_G, "mark"))
    assert.equal("worker", ex:submit(function() return mark end):result())
  end)

  it("copies recursive local functions", function()
    local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
    assert.equal(55, ex:submit(fib, 10):result())
  end)

  it("sends C functions and module tables by name", function()
    assert.equal(9, ex:submit(math.max, 3, 9, 1):result())
    assert.equal(string, (echo(string)))
    local fmt = string.format
    assert.equal("x=1", ex:submit(function() return fmt("x=%d", 1) end):result())
    assert.equal(print, (echo(print)))
  end)

  it("sends metatables by name when reachable, else copies them", function()
    local obj = setmetatable({}, futures.TimeoutError)
    assert.equal(futures.TimeoutError, getmetatable((echo(obj))))
    local mt = {__index = {hello = function() return "hi" end}}
    local r = echo(setmetatable({}, mt))
    assert.equal("hi", r.hello())
  end)

  it("keeps error objects' classes across states", function()
    local f = ex:submit(function() error(futures.RuntimeError("inner")) end)
    local err = support.error_of(f.result, f)
    assert.is_true(futures.RuntimeError:is(err))
    assert.equal("RuntimeError: inner", tostring(err))
  end)

  describe("TransferError", function()
    local cases = {
      {"a coroutine argument", function() return ex:submit(print, 1, coroutine.create(print)) end,
       "cannot transfer argument #3: thread"},
      {"a nested userdata", function() return ex:submit(print, {conn = ex:map(print, {})}) end,
       "cannot transfer argument #2 (field 'conn'): userdata"},
      {"a deep path", function() return ex:submit(print, {a = {b = {ex:map(print, {})}}}) end,
       "cannot transfer argument #2 (field 'a.b[1]'): userdata"},
      {"an upvalue", function() local co = coroutine.create(print) return ex:submit(function() return co end) end,
       "cannot transfer argument #1 (upvalue 'co'): thread"},
      {"a C closure", function() return ex:submit(print, string.gmatch("a", "a")) end,
       "cannot transfer argument #2: C function not found in package.loaded"},
      {"a key", function() return ex:submit(print, {[coroutine.create(print)] = 1}) end,
       "cannot transfer argument #2 (a key): thread"},
    }
    for _, case in ipairs(cases) do
      it("names " .. case[1], function()
        local err = support.error_of(case[2])
        assert.is_true(futures.TransferError:is(err))
        assert.equal(case[3], err.message)
      end)
    end

    it("fails a task whose result cannot be copied", function()
      local f = ex:submit(function() return 1, coroutine.create(print) end)
      local err = support.error_of(f.result, f)
      assert.is_true(futures.TransferError:is(err))
      assert.equal("cannot transfer result #2: thread", err.message)
    end)

    it("refuses tables nested too deep without crashing", function()
      local t = {}
      for _ = 1, 10001 do t = {t} end
      local err = support.error_of(ex.submit, ex, print, t)
      assert.is_true(futures.TransferError:is(err))
      assert.matches("nested too deep", err.message)
    end)

    it("carries tables nested 10,000 deep both ways", function()
      local function deep(n) local t = {} for _ = 2, n do t = {t} end return t end
      local function depth(t) local n = 1 while t[1] do n = n + 1 t = t[1] end return n end
      assert.equal(10000, ex:submit(depth, deep(10000)):result())
      assert.equal(10000, depth(ex:submit(deep, 10000):result()))
      local err = support.error_of(function() return ex:submit(deep, 10001):result() end)
      assert.matches("nested too deep", err.message)
    end)
  end)
end)

-- Modules written for these specs, found through package.path by the
-- caller and its workers alike.
-- Their names are unique to this run (no shell is needed to make them:
-- under ThreadSanitizer there is none).
local tmp = os.tmpname()
os.remove(tmp)
local moddir, stem = tmp:match("^(.*)/([^/]*)$")
stem = stem:gsub("%W", "_")
local written = {}
local function module(name, code)
  local path = moddir .. "/" .. stem .. name .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  written[#written + 1] = path
end
local SHAPES, MM, PICKY, GHOST = stem .. "shapes", stem .. "mm", stem .. "picky", stem .. "ghost"
module("shapes", "return {Square = {__index = {area = function(s) return s.side ^ 2 end}}}")
module("mm", "return {meta = 42}")
-- Loads anywhere but in a state that set LF_PICKY.
module("picky", "if rawget(_G, 'LF_PICKY') then error('picky: not in this state') end\n" ..
                "return {M = {__index = {x = 1}}}")

describe("values that the receiver cannot decode", function()
  local saved_path = package.path
  local kinds = {{"thread", function() return futures.ThreadPoolExecutor(1) end}}
  if support.children_ok then
    kinds[2] = {"process", function() return futures.ProcessPoolExecutor(1) end}
  end
  setup(function() package.path = moddir .. "/?.lua;" .. package.path end)
  teardown(function()
    package.path = saved_path
    for _, m in ipairs{SHAPES, MM, PICKY, GHOST} do package.loaded[m] = nil end
    for _, path in ipairs(written) do os.remove(path) end
    rawset(_G, "LF_PICKY", nil)
    support.collect()
  end)

  for _, kind in ipairs(kinds) do
    describe("on a " .. kind[1] .. " pool", function()
      local ex
      before_each(function() ex = kind[2]() end)
      after_each(function() ex:shutdown() ex = nil support.collect() end)

      it("sends a module's field as a metatable by name, also after a reload", function()
        ex:submit(math.max, 1):result() -- the sender's names are indexed now
        local shapes = require(SHAPES)
        local same = function(o) return getmetatable(o) == require(SHAPES).Square, o:area() end
        assert.same({true, 9}, {ex:submit(same, setmetatable({side = 3}, shapes.Square)):result()})
        package.loaded[SHAPES] = nil -- loaded anew: a new table, same count
        shapes = require(SHAPES)
        assert.same({true, 4}, {ex:submit(same, setmetatable({side = 2}, shapes.Square)):result()})
        local r = ex:submit(function() return setmetatable({side = 5}, require(SHAPES).Square) end):result()
        assert.equal(shapes.Square, getmetatable(r))
      end)

      it("refuses a named metatable that is no table in the receiver", function()
        package.loaded[MM] = {meta = {__index = {hello = function() return "hi" end}}}
        local f = ex:submit(function(o) return o.hello end, setmetatable({}, package.loaded[MM].meta))
        local err = support.error_of(f.result, f)
        assert.is_true(futures.TransferError:is(err))
        assert.equal("cannot transfer metatable '" .. MM .. ".meta': a number in this state, not a table",
                     err.message)
        assert.equal(3, ex:submit(function() return 3 end):result()) -- still usable
        package.loaded[MM] = nil
      end)

      it("fails a task whose arguments the worker cannot decode, with the loader's error", function()
        package.loaded[GHOST] = {M = {}} -- no file: the worker cannot load it
        local f = ex:submit(function() end, setmetatable({}, package.loaded[GHOST].M))
        local err = support.error_of(f.result, f)
        assert.is_true(futures.TransferError:is(err))
        assert.matches(("cannot transfer '%s': module '%s' not found"):format(GHOST, GHOST), err.message, 1, true)
        assert.equal(3, ex:submit(function() return 3 end):result())
        package.loaded[GHOST] = nil
      end)

      it("raises a result the caller cannot decode as a TransferError with the loader's error", function()
        package.loaded[PICKY] = nil
        rawset(_G, "LF_PICKY", true)
        local f = ex:submit(function() return setmetatable({}, require(PICKY).M) end)
        local err = support.error_of(f.result, f)
        assert.is_true(futures.TransferError:is(err))
        assert.matches("cannot transfer '" .. PICKY .. "': ", err.message, 1, true)
        assert.matches("picky: not in this state", err.message, 1, true)
        assert.is_true(futures.TransferError:is(support.error_of(f.exception, f)))
        rawset(_G, "LF_PICKY", nil)
        assert.equal(1, f:result().x) -- decoded once it can be
        assert.equal(3, ex:submit(function() return 3 end):result())
      end)
    end)
  end
end)

-- Crafted payloads, decoded by the decoder's driver (bindings/tests/
-- fuzz_decode.c) as bytes from another process. The first byte is the
-- driver's mode: 0 values, 1 a count then values, 2 skipped values, 3 a
-- payload of this process that owns no objects.
local P = string.pack
local T = {NIL = 0, TRUE = 2, SMALLINT = 4, FLT = 5, STR8 = 6, STR = 7, TABLE = 8,
           REF = 9, FUNC = 10, NAMED = 12, HANDLE = 13}
local function str8(s) return P("<BBc" .. #s, T.STR8, #s, s) end
local nested = string.rep(P("<BI4I4", T.TABLE, 1, 0), 100000)
local noups = string.dump(function() return 1 end)
local crafted = {
  {"handle-remote", "\0" .. P("<BBI4", T.HANDLE, 1, 0), "a handle from another process"},
  {"handle-pointer", "\0" .. P("<BBI8", T.HANDLE, 1, 0x4141414141414141), "a handle from another process"},
  {"blob-remote", "\0" .. P("<BBI4B", T.FUNC, 0, 0, 0), "a function blob from another process"},
  {"handle-local-index", "\3" .. P("<BBI4", T.HANDLE, 1, 0x41414141), "object index out of range"},
  {"nested-100000", "\0" .. nested, "nested too deep"},
  {"nested-skip", "\2" .. nested, "skip: corrupt payload", true},
  {"array-count-2pow32", "\0" .. P("<BI4I4", T.TABLE, 0xffffffff, 0), "a count larger than the payload"},
  {"presize-2pow26", "\0" .. P("<BI4I4", T.TABLE, (1 << 26) - 1, (1 << 26) - 1) .. string.rep("\0", 18),
   "a count larger than the payload"},
  {"truncated-int", "\0" .. P("<BB", T.SMALLINT, 1), "truncated"},
  {"truncated-length", "\0" .. P("<B", T.STR8), "truncated"},
  {"truncated-string", "\0" .. P("<BI4", T.STR, 100) .. "abc", "truncated"},
  {"three-results-none", "\1" .. P("<I4", 3), "truncated"},
  {"upvalues-over-bytecode", "\0" .. P("<BBs4B", T.FUNC, 1, noups, 3) .. "\0\0\0", "wrong upvalue count"},
  {"bytecode-garbage", "\0" .. P("<BBs4B", T.FUNC, 1, "\27Lua\84\0garbage", 0), "not bytecode of this Lua"},
  {"function-flags", "\0" .. P("<BB", T.FUNC, 9), "function flags"},
  {"unknown-tag", "\0\200", "unknown tag"},
  {"ref-to-nothing", "\0" .. P("<BI4", T.REF, 5), "a reference to nothing"},
  {"nil-key", "\0" .. P("<BI4I4BBB", T.TABLE, 0, 1, T.NIL, T.TRUE, 0), "a nil or NaN key"},
  {"nan-key", "\0" .. P("<BI4I4BdBB", T.TABLE, 0, 1, T.FLT, 0/0, T.TRUE, 0), "a nil or NaN key"},
  {"metatable-copy-number", "\0" .. P("<BI4I4BBi4", T.TABLE, 0, 0, 2, T.SMALLINT, 42),
   "a metatable that is not a table"},
  {"metatable-copy-gc", "\0" .. P("<BI4I4BBI4I4", T.TABLE, 0, 0, 2, T.TABLE, 0, 1) .. str8("__gc") ..
   P("<B", 11) .. str8("os\0exit") .. "\0",
   "cannot transfer a copied metatable with __gc from another process", true},
  {"metatable-named-function", "\0" .. P("<BI4I4B", T.TABLE, 0, 0, 1) .. str8("string\0format"),
   "cannot transfer metatable 'string.format': a function in this state, not a table", true},
  {"named-missing-module", "\0" .. P("<B", T.NAMED) .. str8("lf_no_such_module"),
   "cannot transfer 'lf_no_such_module': module 'lf_no_such_module' not found", true},
  {"named-missing-field", "\0" .. P("<B", T.NAMED) .. str8("string\0nope"),
   "cannot transfer 'string.nope': not found in this state", true},
}

describe("a payload from another process", function()
  local driver = os.getenv("LUAFUTURES_DECODE_CHECK") or "build/fuzz_decode"
  local function have_driver()
    local f = io.open(driver) if f then f:close() end
    return f ~= nil and support.children_ok
  end
  local function decode(bytes, env)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
    local p = io.popen(("%s timeout 60 %s %s 2>&1"):format(env or "", driver, path))
    local out = p:read("a")
    local ok, _, status = p:close()
    os.remove(path)
    return out:gsub("\n$", ""), status
  end
  -- LUAFUTURES_WRITE_CORPUS=dir writes these into the fuzz corpus.
  local corpus = os.getenv("LUAFUTURES_WRITE_CORPUS")
  if corpus then
    for _, c in ipairs(crafted) do
      local f = assert(io.open(corpus .. "/crafted-" .. c[1], "wb"))
      f:write(c[2]:sub(1, 9001)) -- libFuzzer's inputs stay small
      f:close()
    end
  end

  for _, c in ipairs(crafted) do
    local name, bytes, want, plain = c[1], c[2], c[3], c[4]
    local test = have_driver() and it or pending
    test("is refused without a crash: " .. name, function()
      local out, status = decode(bytes)
      assert.equal(0, status)
      if not plain then want = "TransferError: corrupt payload (" .. want end
      assert.matches(want, out, 1, true)
      if plain and not want:find("^skip") then assert.matches("^TransferError: ", out) end
    end)
  end

  local test = have_driver() and it or pending
  test("bounds strings by LUAFUTURES_MAX_MESSAGE", function()
    local bytes = "\0" .. P("<BI4", T.STR, 20) .. string.rep("x", 20)
    assert.equal("ok 1", (decode(bytes)))
    assert.equal("TransferError: corrupt payload (a string over LUAFUTURES_MAX_MESSAGE)",
                 (decode(bytes, "LUAFUTURES_MAX_MESSAGE=10")))
    assert.equal("ok 1", (decode(bytes, "LUAFUTURES_MAX_MESSAGE=1K")))
  end)

  test("checks bytecode before Lua's loader reads it", function()
    -- Found by the fuzzer: debug info with more upvalue names than the
    -- function has upvalues makes Lua 5.4.4's loader write through NULL.
    local f = assert(io.open("spec/fuzz/fuzz_decode/found-upvalue-names", "rb"))
    local bytes = f:read("a")
    f:close()
    assert.equal("TransferError: corrupt payload (bytecode upvalue names)", (decode(bytes)))
    local dumped = string.dump(function(...) return select("#", ...) end)
    local ok = "\0" .. P("<BBs4B", T.FUNC, 1, dumped, 1) .. "\14"
    assert.equal("ok 1", (decode(ok)))
    assert.equal("TransferError: corrupt payload (bytes after the bytecode)",
                 (decode("\0" .. P("<BBs4B", T.FUNC, 1, dumped .. "x", 1) .. "\14")))
    assert.equal("TransferError: corrupt payload (truncated bytecode)",
                 (decode("\0" .. P("<BBs4B", T.FUNC, 1, dumped:sub(1, -3), 1) .. "\14")))
  end)

  test("decodes every valid seed of the corpus", function()
    local p = io.popen("ls spec/fuzz/fuzz_decode/valid-* spec/fuzz/fuzz_decode/local-*")
    local n = 0
    for file in p:lines() do
      local f = assert(io.open(file, "rb"))
      local bytes = f:read("a")
      f:close()
      local out = decode(bytes)
      if file:find("local%-") then -- a Future, an executor
        assert.equal("TransferError: corrupt payload (object index out of range)", out)
      else
        assert.equal("ok 1", out, file)
      end
      n = n + 1
    end
    p:close()
    assert.is_true(n > 40)
  end)
end)
