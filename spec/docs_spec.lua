-- The README documents every name the module exports: docs cannot drift.
local support = require "support"
local futures = support.futures

local function readme()
  local fh = assert(io.open("README.md"))
  local text = fh:read("a")
  fh:close()
  return text
end

describe("README", function()
  local text = readme()

  local function documented(name) return text:find(name, 1, true) ~= nil end

  it("documents every module field", function()
    for name in pairs(futures) do
      assert.is_true(documented(name), "futures." .. name .. " is not in README.md")
    end
  end)

  it("documents every method of every class", function()
    local objects = {
      Future = futures.Future(),
      ThreadPoolExecutor = futures.ThreadPoolExecutor(1),
      Queue = futures.Queue(),
    }
    objects.map = objects.ThreadPoolExecutor:map(print, {})
    for what, obj in pairs(objects) do
      for name in pairs(getmetatable(obj).__index) do
        assert.is_true(documented(name .. "("), what .. ":" .. name .. " is not in README.md")
      end
    end
    objects.ThreadPoolExecutor:shutdown()
  end)

  it("names the two commands", function()
    assert.is_true(documented("make demo"))
    assert.is_true(documented("make test"))
  end)
end)
