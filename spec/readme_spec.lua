-- Every `lua` block of README.md is a whole program that runs as written:
-- each runs as a child from the repository root (where the tour says to
-- run it) and must exit 0 with nothing on stderr.
local support = require "support"
local shell = require "shell"

local function lua_blocks(text)
  local blocks = {}
  for code in text:gmatch("\n```lua\n(.-)\n```") do blocks[#blocks + 1] = code end
  return blocks
end

describe("README.md", function()
  local blocks = lua_blocks(assert(shell.slurp("README.md")))

  it("has a tour", function()
    assert.is_true(#blocks >= 5, "found " .. #blocks .. " lua blocks")
  end)

  local it_child = support.children_ok and it or pending
  for n, code in ipairs(blocks) do
    local first = code:match("\n([^\n]*[%w][^\n]*)", #"local futures") or code:match("^[^\n]*")
    it_child(("block %d runs as written (%s)"):format(n, first), function()
      local out, err, status = support.run_script(code)
      assert.equal("", err)
      assert.equal(0, status)
      assert.is_true(#out > 0, "it printed nothing")
    end)
  end
end)
