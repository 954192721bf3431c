-- Packaging as a LuaRocks user meets it: a binary rock built once installs
-- into another tree and runs from there, `make dist` gives a source rock
-- that installs offline, and the editor definitions name every export.
--
-- The rocks are built from the `make dist` tarball, unpacked in a scratch
-- directory, so building them never relinks this checkout's module (which
-- may be a sanitizer build the rest of the suite is using).
local support = require "support"
local futures = support.futures

local shell = require "shell"
local slurp, q = shell.slurp, shell.q

-- Builds here never relink this checkout: no inherited MAKEFLAGS.
local function sh(cmd) return shell.sh(cmd, true) end

local function version()
  return slurp("Makefile"):match("\nVERSION%s*=%s*(%S+)")
end

-- Every file under dir, relative to it, sorted.
local function files_under(dir)
  local _, out = sh("cd " .. dir .. " && find . -type f | sort")
  local t = {}
  for line in out:gmatch("[^\n]+") do t[#t + 1] = line:gsub("^%./", "") end
  return t
end

-- A fresh lua5.4 that sees only this tree: no environment but PATH.
local function run_in_tree(tree, code)
  return sh(("cd / && env -i PATH=\"$PATH\" LUA_PATH='%s/share/lua/5.4/?.lua' "
    .. "LUA_CPATH='%s/lib/lua/5.4/?.so' lua5.4 -e %s"):format(tree, tree, q(code)))
end

local POOLS = [[
  local futures = require "concurrent.futures"
  local t <close> = futures.ThreadPoolExecutor(2)
  local p <close> = futures.ProcessPoolExecutor{max_workers = 1, start_method = "spawn"}
  local pid = p:submit(futures.getpid):result()
  io.write(t:submit(function(a) return a * 2 end, 21):result(), " ",
           tostring(pid ~= futures.getpid()), " ", futures._VERSION)
]]

local usable = support.children_ok and os.execute("command -v luarocks >/dev/null 2>&1") == true
  and os.execute("command -v zip >/dev/null 2>&1") == true

describe("packaging", function()
  if not usable then
    it("needs luarocks and zip, and runs commands", function()
      pending("not under ThreadSanitizer, with luarocks and zip installed")
    end)
    return
  end

  local V = version()
  local scratch, src, lr
  lazy_setup(function()
    scratch = os.tmpname()
    os.remove(scratch)
    assert(os.execute("mkdir -p " .. scratch))
    lr = "luarocks --lua-version 5.4 "
    local ok, out = sh("make dist DIST=" .. scratch .. "/dist")
    assert(ok, out)
    src = scratch .. "/src/luafutures-" .. V
    ok, out = sh(("mkdir -p %s/src && tar -xzf %s/dist/luafutures-%s.tar.gz -C %s/src")
      :format(scratch, scratch, V, scratch))
    assert(ok, out)
  end)
  lazy_teardown(function()
    if scratch then os.execute("rm -rf " .. scratch) end
  end)

  -- Quick builds: this spec tests where files go, not the optimiser.
  local FAST = "MAKEFLAGS='-j2 OPT=-O0' "

  describe("a binary rock", function()
    local rock, tree
    lazy_setup(function()
      local ok, out = sh(("cd %s && %s%s --tree %s/a make --pack-binary-rock luafutures-%s-1.rockspec")
        :format(src, FAST, lr, scratch, V))
      assert(ok, out)
      rock = out:match("Packed: (%S+%.rock)")
      assert(rock, out)
      tree = scratch .. "/b"
      ok, out = sh(("%s --tree %s install %s"):format(lr, tree, rock))
      assert(ok, out)
    end)

    it("carries the module, both commands, the header and the library", function()
      local ok, out = sh("unzip -Z1 " .. rock)
      assert(ok, out)
      for _, f in ipairs{"lib/concurrent/futures.so", "bin/luafutures", "bin/luafutures-worker",
                         "lib/luafutures/include/luafutures.h",
                         "lib/luafutures/lib/libluafutures.a",
                         "lib/luafutures/lib/pkgconfig/luafutures.pc",
                         "types/concurrent/futures.lua"} do
        assert.truthy(out:find("\n" .. f .. "\n", 1, true) or out:find("^" .. f .. "\n"), f .. " not in the rock:\n" .. out)
      end
      assert.matches("%.linux%-[%w_]+%.rock$", rock)
    end)

    it("runs a thread pool and a spawn process pool from a second tree", function()
      local ok, out = run_in_tree(tree, POOLS)
      assert.is_true(ok, out)
      assert.equal("42 true " .. V, out)
    end)

    it("puts the commands in the tree's bin and they run", function()
      local ok, out = sh(tree .. "/bin/luafutures -v")
      assert.is_true(ok, out)
      assert.matches("^luafutures " .. V:gsub("%.", "%%.") .. ", Lua 5%.4", out)
    end)

    it("gives a C host its flags through pkg-config", function()
      local pc = ("PKG_CONFIG_PATH=%s/lib/lua/5.4/luafutures/lib/pkgconfig pkg-config "):format(tree)
      local ok, out = sh(pc .. "--modversion luafutures && " .. pc .. "--cflags --libs luafutures")
      assert.is_true(ok, out)
      local ver, inc, lib = out:match("^(%S+)\n%-I(%S+) .-(%S+libluafutures%.a) %-lpthread %-lm %-ldl")
      assert.equal(V, ver, out)
      assert.truthy(slurp(inc .. "/luafutures.h"), out)
      assert.truthy(slurp(lib), out)
    end)

    it("leaves nothing behind when removed", function()
      local ok, out = sh(("%s --tree %s remove luafutures"):format(lr, tree))
      assert.is_true(ok, out)
      assert.same({"lib/luarocks/rocks-5.4/manifest"}, files_under(tree))
    end)
  end)

  describe("make dist", function()
    it("writes a source rock that installs offline and runs", function()
      local srock = ("%s/dist/luafutures-%s-1.src.rock"):format(scratch, V)
      local tree = scratch .. "/c"
      -- Any download would go to a port where nothing listens.
      local ok, out = sh(("cd %s && %shttp_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 "
        .. "%s --tree %s install ./%s"):format(scratch .. "/dist", FAST, lr, tree,
          srock:match("[^/]+$")))
      assert.is_true(ok, out)
      ok, out = run_in_tree(tree, POOLS)
      assert.is_true(ok, out)
      assert.equal("42 true " .. V, out)
    end)
  end)
end)

describe("the rockspecs", function()
  local V = version()

  it("the versioned one is the scm one with a release source", function()
    local scm = slurp("luafutures-scm-1.rockspec")
    local rel = slurp(("luafutures-%s-1.rockspec"):format(V))
    assert.truthy(rel, "no rockspec for VERSION " .. V)
    local function body(s) return (s:gsub("\nversion = [^\n]*", ""):gsub("\nsource = %b{}", "")) end
    assert.equal(body(scm), body(rel))
    assert.matches('\nversion = "' .. V:gsub("%.", "%%.") .. '%-1"', rel)
    assert.truthy(rel:find("luafutures-" .. V .. ".tar.gz", 1, true))
  end)

  it("both let luarocks test run the suite with the system busted", function()
    for _, name in ipairs{"luafutures-scm-1.rockspec", ("luafutures-%s-1.rockspec"):format(V)} do
      local env = {}
      assert(load(slurp(name), name, "t", env))()
      assert.same({type = "command", command = "make test-c test-lua"}, env.test)
    end
  end)

  it("luarocks make without the Lua headers says what is missing", function()
    if not usable then pending("needs luarocks, and runs commands") return end
    local tree = os.tmpname()
    local ok, out = sh(("luarocks --lua-version 5.4 --tree %s.t make luafutures-scm-1.rockspec "
      .. "LUA_INCDIR=/nonexistent/lua5.4"):format(tree))
    os.execute(("rm -rf %s %s.t"):format(tree, tree))
    assert.is_false(ok)
    assert.truthy(out:find("Lua header files", 1, true), out)
  end)

  it("futures._VERSION is the Makefile's VERSION", function()
    assert.equal(V, futures._VERSION)
  end)
end)

-- Every name the module exports has an annotation in the editor's
-- definitions, so completion and hover cannot drift from the module.
describe("types/concurrent/futures.lua", function()
  local text = slurp("types/concurrent/futures.lua")
  local annotated = {}
  for class, name in text:gmatch("\nfunction ([%w_]+)[.:]([%w_]+)%(") do
    annotated[class .. "." .. name] = true
  end
  for name in text:gmatch("\n%-%-%-@field ([%w_]+)") do annotated["futures." .. name] = true end
  for name in text:gmatch("\nfutures%.([%w_]+) =") do annotated["futures." .. name] = true end

  it("is a lua-language-server meta file that loads", function()
    assert.matches("^%-%-%-@meta concurrent%.futures\n", text)
    assert.truthy(load(text, "types", "t", {}))
    assert.matches('"workspace%.library": %["types"%]', slurp(".luarc.json"))
  end)

  it("annotates every field of the module table", function()
    for name in pairs(futures) do
      assert.is_true(annotated["futures." .. name] == true, "futures." .. name .. " has no annotation")
    end
  end)

  it("annotates every method of every class", function()
    local ex = futures.ThreadPoolExecutor(1)
    local objects = {
      Future = futures.Future(),
      ThreadPoolExecutor = ex,
      ProcessPoolExecutor = futures.ProcessPoolExecutor(1),
      MapIterator = ex:map(print, {}),
    }
    local base = {ThreadPoolExecutor = "Executor", ProcessPoolExecutor = "Executor"}
    for class, obj in pairs(objects) do
      for name in pairs(getmetatable(obj).__index) do
        local ok = annotated[class .. "." .. name] or annotated[(base[class] or "") .. "." .. name]
        assert.is_true(ok == true, class .. ":" .. name .. " has no annotation")
      end
    end
    for name in pairs(futures.Error) do
      if not name:match("^__") then
        assert.is_true(annotated["ErrorClass." .. name] or text:find("@field " .. name .. " ", 1, true) ~= nil,
          "Error." .. name .. " has no annotation")
      end
    end
    objects.ProcessPoolExecutor:shutdown()
    ex:shutdown()
  end)
end)
