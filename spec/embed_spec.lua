-- The C face of luafutures: only include/luafutures.h's names leave the
-- module and the static library, and `make install` gives a C host a
-- header, a library and a pkg-config file it can build with.
local support = require "support"

local shell = require "shell"
local slurp, sh = shell.slurp, shell.sh

-- The names the header declares LUAFUTURES_API.
local function header_names()
  local names = {}
  for name in slurp("include/luafutures.h"):gmatch("LUAFUTURES_API [%w_ *]-([%w_]+)%(") do
    names[name] = true
  end
  return names
end

-- The defined global symbols nm prints for these arguments.
local function symbols(args)
  local ok, out = sh("nm " .. args)
  assert(ok, out)
  local t = {}
  for name in out:gmatch("%x* [A-TV-Z] ([%w_]+)\n") do t[#t + 1] = name end
  return t, out
end

describe("include/luafutures.h", function()
  local names = header_names()

  it("declares the API of the design, each marked LUAFUTURES_API", function()
    for _, n in ipairs{"luaopen_concurrent_futures", "luafutures_preload", "luafutures_register",
                       "luafutures_set_hooks", "luafutures_poll", "luafutures_pending",
                       "luafutures_notify_fd", "luafutures_shutdown_all", "luafutures_interrupt",
                       "luafutures_worker_main"} do
      assert.is_true(names[n], n)
    end
    local text = slurp("include/luafutures.h")
    assert.truthy(text:find('#define LUAFUTURES_VERSION "' .. support.futures._VERSION .. '"', 1, true))
    for inc in text:gmatch("#include <([^>]+)>") do assert.equal("lua.h", inc) end
  end)

  if not support.children_ok then
    it("is checked with nm and a C host", function() pending("runs commands: not under ThreadSanitizer") end)
    return
  end

  for what, args in pairs{["concurrent/futures.so exports"] = "-D --defined-only concurrent/futures.so",
                          ["lib/libluafutures.a defines globally"] = "-g --defined-only lib/libluafutures.a"} do
    it("names all that " .. what, function()
      local syms, out = symbols(args)
      local seen = {}
      for _, s in ipairs(syms) do
        assert.is_true(names[s], s .. " is not in the header:\n" .. out)
        seen[s] = true
      end
      assert.is_true(seen.luaopen_concurrent_futures and seen.luafutures_preload, out)
    end)
  end
end)

describe("make install", function()
  if not support.children_ok then
    it("installs for C hosts", function() pending("runs commands: not under ThreadSanitizer") end)
    return
  end

  local HOST = [[
#include <stdio.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luafutures.h>
int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luafutures_preload(L);
  int rc = luaL_dostring(L,
    "local f = require 'concurrent.futures'\n"
    "local ex <close> = f.ThreadPoolExecutor(1)\n"
    "io.write(ex:submit(function(a) return a + 1 end, 41):result(), ' ', f._VERSION)\n");
  if (rc != 0) fprintf(stderr, "%s\n", lua_tostring(L, -1));
  lua_close(L);
  printf(" %s\n", LUAFUTURES_VERSION);
  return rc;
}
]]

  it("gives a C host what pkg-config names, and the host runs a pool", function()
    local prefix = os.tmpname()
    os.remove(prefix)
    local ok, out = sh("make install PREFIX=" .. prefix)
    assert.is_true(ok, out)
    for _, f in ipairs{"include/luafutures.h", "lib/libluafutures.a", "lib/pkgconfig/luafutures.pc",
                       "lib/lua/5.4/concurrent/futures.so", "bin/luafutures", "bin/luafutures-worker"} do
      assert.truthy(slurp(prefix .. "/" .. f), f .. " not installed")
    end
    local c = prefix .. "/host.c"
    local fh = assert(io.open(c, "w"))
    fh:write(HOST)
    fh:close()
    -- A sanitizer build of the library needs its runtime in the host too.
    local _, nm = sh("nm lib/libluafutures.a | grep -c __asan_ || true")
    local san = tonumber(nm) > 0 and "-fsanitize=address,undefined " or ""
    ok, out = sh(("cc %s%s -o %s/host $(PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs luafutures) -llua5.4")
      :format(san, c, prefix, prefix))
    assert.is_true(ok, out)
    ok, out = sh(("cd / && ASAN_OPTIONS=detect_leaks=0 %s/host"):format(prefix))
    os.execute("rm -rf " .. prefix)
    assert.is_true(ok, out)
    assert.equal("42 0.2.0 0.2.0\n", out)
  end)

  it("names the place it cannot write, and how to choose another", function()
    local ok, out = sh("make install PREFIX=/proc/luafutures-nowhere")
    assert.is_false(ok)
    assert.matches("make install: cannot write to /proc/luafutures%-nowhere/", out)
    assert.truthy(out:find("PREFIX=", 1, true))
  end)

  it("names the missing Lua headers instead of failing in the compiler", function()
    local ok, out = sh("make LUA_INC=/nonexistent/lua5.4")
    assert.is_false(ok)
    assert.truthy(out:find("/nonexistent/lua5.4/lua.h not found", 1, true), out)
    assert.truthy(out:find("liblua5.4-dev", 1, true), out)
  end)
end)

describe("the module's own names", function()
  -- An lfb_ name that one object of bindings/ defines and no other object
  -- (nor a C test) uses is that file's own: it should be static, out of
  -- the headers. -Wmissing-prototypes cannot tell, since the header
  -- declares it.
  if not support.children_ok then
    it("are each used by another file", function() pending("runs commands: not under ThreadSanitizer") end)
    return
  end

  it("are each used by another file", function()
    local build = "build" .. (support.sanitizer and "-" .. support.sanitizer or "")
    local ok, out = sh(("nm -A %s/bindings/*.o %s/runtime/*.o"):format(build, build))
    assert(ok, out)
    local defined, used = {}, {}
    for file, kind, name in out:gmatch("([^\n:]+):%x*%s+(%a) (lfb_[%w_]+)\n") do
      if kind == "U" then
        used[name] = used[name] or {}
        used[name][file] = true
      elseif kind:match("%u") then
        defined[name] = file
      end
    end
    local tests = ""
    for _, t in ipairs{"test_embed.c", "test_embed_mpi.c", "fuzz_decode.c"} do
      tests = tests .. (slurp("bindings/tests/" .. t) or "")
    end
    local lonely = {}
    for name, file in pairs(defined) do
      local elsewhere = false
      for f in pairs(used[name] or {}) do elsewhere = elsewhere or f ~= file end
      if not elsewhere and not tests:find(name .. "%f[^%w_]") then
        lonely[#lonely + 1] = name .. " (" .. file .. ")"
      end
    end
    table.sort(lonely)
    assert.same({}, lonely)
  end)
end)
