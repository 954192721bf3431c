-- The rockspec installs the module into a Lua tree that a fresh lua5.4 can
-- require from.
local support = require "support"

describe("luafutures-scm-1.rockspec", function()
  it("installs with luarocks make into a tree and loads from there", function()
    if not support.children_ok then pending("runs commands: not under ThreadSanitizer") return end
    if os.execute("command -v luarocks >/dev/null 2>&1") ~= true then
      pending("luarocks is not installed")
      return
    end
    local tree = os.tmpname()
    os.remove(tree)
    local log = tree .. ".log"
    local ok = os.execute(("luarocks --lua-version 5.4 --tree %s make luafutures-scm-1.rockspec >%s 2>&1")
      :format(tree, log))
    local fh = io.open(log) local out = fh and fh:read("a") or "" if fh then fh:close() end
    assert.is_true(ok == true, out)
    local cmd = ("cd / && LUA_CPATH='%s/lib/lua/5.4/?.so' lua5.4 -e '"
      .. "local f = require \"concurrent.futures\" "
      .. "local ex <close> = f.ThreadPoolExecutor(1) "
      .. "io.write(ex:submit(function(a) return a * 2 end, 21):result())' 2>&1"):format(tree)
    local p = io.popen(cmd)
    local result = p:read("a")
    p:close()
    os.execute("rm -rf " .. tree .. " " .. log)
    assert.equal("42", result)
  end)
end)
