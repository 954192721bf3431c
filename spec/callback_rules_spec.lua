-- Where and when done callbacks run: only in the state that added them,
-- only at the points where that state enters the runtime, never on a
-- future already collected, and not at all once their state is closing.
local support = require "support"
local futures = support.futures

describe("done callbacks", function()
  local ex, opener
  before_each(function()
    ex, opener = futures.ThreadPoolExecutor(2), futures.ThreadPoolExecutor(1)
  end)
  after_each(function()
    ex:shutdown() opener:shutdown() ex, opener = nil, nil
    support.collect()
  end)
  -- Opens a gate from a worker's state: submit is not a point where this
  -- state runs callbacks, so none runs before the test looks.
  local function open(gate) opener:submit(function(g) g:set_result(true) end, gate) end

  it("run in the state that added them, at its next runtime entry only", function()
    local ran, gate = {}, support.gate()
    local f = ex:submit(function(g) return g:result() end, gate)
    f:add_done_callback(function(g) ran[#ran + 1] = futures.thread_name() end)
    open(gate)
    repeat until f:done() -- done() is not an entry point
    assert.equal(0, #ran)
    -- the completion posts the callback just after done() turns true
    local n
    repeat n = futures.poll() until n > 0
    assert.equal(1, n)
    assert.same({"MainThread"}, ran)
    assert.equal(0, futures.poll())
  end)

  it("added inside a task run in that worker's state", function()
    local gate = support.gate()
    local name = ex:submit(function(g)
      local fs = require "concurrent.futures"
      local where
      g:add_done_callback(function() where = fs.thread_name() end)
      g:result() -- an entry point of the worker's state
      return where
    end, gate)
    gate:set_result(true)
    assert.matches("^ThreadPoolExecutor%-%d+_0$", name:result())
  end)

  it("added to a done future run that one alone", function()
    local gate, other = support.gate(), support.gate()
    local order = {}
    local f = ex:submit(function(g) return g:result() end, gate)
    f:add_done_callback(function() order[#order + 1] = "first" end)
    other:set_result(1)
    open(gate)
    repeat until f:done()
    other:add_done_callback(function() order[#order + 1] = "now" end)
    assert.same({"now"}, order)
    repeat futures.poll() until #order == 2
    assert.same({"now", "first"}, order)
  end)
end)

describe("a callback", function()
  it("runs no other callback inside it, even one its own completion posts", function()
    local log, f, g = {}, futures.Future(), futures.Future()
    g:add_done_callback(function() log[#log + 1] = "g" end)
    f:add_done_callback(function()
      log[#log + 1] = "f start"
      g:set_result(1) -- an entry point, inside a callback: g's waits
      log[#log + 1] = "f end"
    end)
    f:set_result(1) -- this state completes f: its callback runs at once
    assert.same({"f start", "f end"}, log)
    assert.equal(1, futures.poll())
    assert.same({"f start", "f end", "g"}, log)
  end)
end)

describe("a state that closes", function()
  if not support.children_ok then
    it("drops its pending callbacks", function() pending("runs a child: not under ThreadSanitizer") end)
    return
  end

  it("drops its pending callbacks, and never runs one on a collected future", function()
    local out, err, status = support.run_script([[
      local futures = require "concurrent.futures"
      local ex = futures.ThreadPoolExecutor(1)
      local gate = futures.Future()
      for i = 1, 4 do
        ex:submit(function(g) return g:result() end, gate):add_done_callback(function(f)
          io.write("callback ran ", tostring(f:done()), "\n")
        end)
      end
      -- Another thread opens the gate: the main state reaches no point
      -- where callbacks run after it (set_result here would be one, and
      -- the tasks could end before it polled), so they end after the
      -- chunk's last such point, or while the state closes.
      futures.ThreadPoolExecutor(1):submit(function(g) g:set_result(true) end, gate)
    ]])
    assert.equal(0, status, err)
    assert.equal("", err)
    assert.equal("", out)
  end)
end)
