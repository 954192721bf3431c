-- `make stress` in small, so that bench/stress.lua cannot rot: every
-- outcome accounted for, no fd, thread or child left over.
local support = require "spec.support"

local it_ = support.children_ok and it or pending

describe("make stress", function()
  it_("accounts for every future of a small run", function()
    local p = io.popen("STRESS_TASKS=4000 ./bin/luafutures bench/stress.lua 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert(ok and out:find("\nstress: ok\n"), out)
  end)
end)
