-- What a script user meets on the first day (issue 13): output in program
-- order through a pipe, and the hint for a global that stayed behind as
-- the luafutures command reports it. Each runs as a child whose stdout is
-- a pipe, as in `lua5.4 script.lua | less`.
local support = require "support"

local HINT = "globals of the caller are not copied to workers: pass it as an argument, capture it as a local, or define it in the initializer"

local it_child = support.children_ok and it or pending

describe("program order", function()
  for _, method in ipairs({"spawn", "fork"}) do
    it_child("holds through a pipe with a " .. method .. " process pool", function()
      local out, err, status = support.run_script(([[
        local futures = require "concurrent.futures"
        local px <close> = futures.ProcessPoolExecutor{max_workers = 1, start_method = %q}
        io.write("a\n"); px:submit(function() io.write("b\n") end):result(); io.write("c\n")
        for _ in px:map(function(s) io.write(s, "\n") end, {"e"}) do end
        io.write("d\n")
      ]]):format(method))
      assert.equal(0, status, err)
      assert.equal("a\nb\nc\ne\nd\n", out)
    end)
  end

  it_child("holds with a thread pool (one process, one stdout buffer)", function()
    local out, err, status = support.run_script([[
      local futures = require "concurrent.futures"
      local ex <close> = futures.ThreadPoolExecutor(1)
      io.write("a\n"); ex:submit(function() io.write("b\n") end):result(); io.write("c\n")
    ]])
    assert.equal(0, status, err)
    assert.equal("a\nb\nc\n", out)
  end)
end)

describe("the globals hint", function()
  it_child("is in the luafutures command's report of an uncaught task error", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write([[
      local futures = require "concurrent.futures"
      function helper(x) return x * 2 end
      local ex <close> = futures.ThreadPoolExecutor(1)
      print(ex:submit(function(x) return helper(x) end, 21):result())
    ]])
    f:close()
    local p = io.popen("timeout 30 bin/luafutures " .. path .. " 2>&1")
    local out = p:read("a")
    local _, _, status = p:close()
    os.remove(path)
    assert.equal(1, status)
    local plain = HINT:gsub("%p", "%%%0")
    -- the message line, then the worker's traceback under its heading
    assert.matches("attempt to call a nil value %(global 'helper'%); " .. plain .. "\n", out)
    assert.matches("raised by a task; the worker's traceback:\n", out)
  end)
end)
