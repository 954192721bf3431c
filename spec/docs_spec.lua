-- The docs (README.md for the newcomer, docs/reference.md for the API)
-- document every name the module exports: docs cannot drift.
local support = require "support"
local shell = require "shell"
local futures = support.futures

local DOCS = "README.md and docs/reference.md"

describe("the docs", function()
  local readme = assert(shell.slurp("README.md"))
  local text = readme .. "\n" .. assert(shell.slurp("docs/reference.md"))

  local function documented(name) return text:find(name, 1, true) ~= nil end

  it("documents every module field", function()
    for name in pairs(futures) do
      assert.is_true(documented(name), "futures." .. name .. " is not in " .. DOCS)
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
        assert.is_true(documented(name .. "("), what .. ":" .. name .. " is not in " .. DOCS)
      end
    end
    objects.ThreadPoolExecutor:shutdown()
  end)

  it("name the two commands in the README", function()
    assert.truthy(readme:find("make demo", 1, true))
    assert.truthy(readme:find("make test", 1, true))
  end)

  it("link the README to the reference, the decisions and the benchmarks", function()
    for _, path in ipairs({"docs/reference.md", "docs/decisions.md", "bench/README.md"}) do
      assert.truthy(readme:find("(" .. path .. ")", 1, true), path)
      assert.truthy(shell.slurp(path), path .. " is missing")
    end
  end)
end)
