-- Runs every example of scripts/ as a child process, the way a user would
-- (bin/luafutures when built, else lua5.4), and checks its exit status, that
-- stderr stays empty, and what it prints: content and order where the
-- example fixes them, sets of lines where threads race.
--
-- A script whose header says `-- needs: Name` is pending while the module
-- has no field `Name` (ProcessPoolExecutor, DeadlockError).

local TIMEOUT = 30 -- seconds per script; a hang fails instead of blocking the run

if os.getenv("LUAFUTURES_SANITIZE") == "thread" then
  -- ThreadSanitizer's preload breaks the children (see spec/support.lua).
  describe("scripts/", function()
    it("run as children", function() pending("not under ThreadSanitizer") end)
  end)
  return
end

local function shell_ok(cmd)
  return os.execute(cmd) == true
end

local INTERPRETER = shell_ok("test -x bin/luafutures") and "bin/luafutures" or "lua5.4"

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- Fields the built module exports, asked of a child so that this process
-- never loads the module (and never owns a thread of its own).
local EXPORTS = {}
do
  local p = io.popen([[lua5.4 -e 'for k in pairs(require "concurrent.futures") do print(k) end' 2>/dev/null]])
  for name in p:lines() do EXPORTS[name] = true end
  p:close()
end

local function needs(script)
  local list = {}
  for line in io.lines("scripts/" .. script .. ".lua") do
    local name = line:match("^%-%- needs: (%w+)")
    if name then
      list[#list + 1] = name
    elseif not line:match("^%-%-") then
      break
    end
  end
  return list
end

local function run(script)
  local errfile = os.tmpname()
  local p = io.popen(("timeout %d %s scripts/%s.lua 2>%s"):format(TIMEOUT, INTERPRETER, script, errfile))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = slurp(errfile)
  os.remove(errfile)
  return out, err, code
end

-- The output under test, with checks that show all of it when they fail.
local Output = {}
Output.__index = Output

function Output:fail(what)
  error(("%s\n--- stdout:\n%s--- stderr:\n%s"):format(what, self.out, self.err), 2)
end

function Output:lines()
  local t = {}
  for line in self.out:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  return t
end

function Output:equals(expected)
  if self.out ~= expected then self:fail("output differs; expected:\n" .. expected) end
end

function Output:has(text)
  if not self.out:find(text, 1, true) then self:fail("missing: " .. text) end
end

function Output:lacks(text)
  if self.out:find(text, 1, true) then self:fail("unexpected: " .. text) end
end

-- Each text appears, after the one before it.
function Output:order(texts)
  local at = 1
  for _, text in ipairs(texts) do
    local s, e = self.out:find(text, at, true)
    if not s then self:fail("missing, or out of order: " .. text) end
    at = e + 1
  end
end

-- Every line matching pattern, captures included.
function Output:matching(pattern)
  local found = {}
  for _, line in ipairs(self:lines()) do
    local caps = table.pack(line:match(pattern))
    if caps[1] ~= nil then found[#found + 1] = caps end
  end
  return found
end

-- The lines matching pattern are exactly the given set, in any order.
function Output:set(pattern, expected)
  local got, want = {}, {}
  for _, line in ipairs(self:lines()) do
    if line:match(pattern) then got[#got + 1] = line end
  end
  for i, line in ipairs(expected) do want[i] = line end
  table.sort(got)
  table.sort(want)
  if table.concat(got, "\n") ~= table.concat(want, "\n") then
    self:fail("lines matching " .. pattern .. " differ; expected (any order):\n" .. table.concat(want, "\n"))
  end
end

function Output:check(cond, what)
  if not cond then self:fail(what) end
end

local POP20 = {"CN", "IN", "US", "ID", "BR", "PK", "NG", "BD", "RU", "JP",
               "MX", "PH", "VN", "ET", "EG", "DE", "IR", "TR", "CD", "FR"}

local function flag_downloads(o)
  local want = {}
  for i, cc in ipairs(POP20) do want[i] = ("/flags/%s/%s.gif"):format(cc:lower(), cc:lower()) end
  local got = {}
  -- Not line by line: the sequential script shows each code after its line.
  for path in o.out:gmatch("download http://127%.0%.0%.1:%d+(/flags/%S+)\n") do got[#got + 1] = path end
  table.sort(want)
  table.sort(got)
  o:check(table.concat(got, " ") == table.concat(want, " "), "not one download line per flag")
  o:has("\n20 flags downloaded in ")
  o:has("20 flags saved\n")
end

local function seconds(o, label)
  local s = o.out:match(label .. ": (%d+%.%d%d)s\n")
  o:check(s, "no time for " .. label)
  return tonumber(s)
end

local PRIMES_OUTPUT = [[
112272535095293 is prime: true
112582705942171 is prime: true
112272535095293 is prime: true
115280095190773 is prime: true
115797848077099 is prime: true
1099726899285419 is prime: false
]]

-- script name -> check of its output
local EXPECT = {}

EXPECT.map_pow = function(o) o:equals("4\n9\n") end

EXPECT.conf1_map = function(o)
  o:order{"main: starting\n", "main: unprocessed results ", "main: waiting for real results\n",
          "main: results: {0.5, 0.4, 0.3, 0.2, 0.1}\n"}
  for n = 1, 5 do
    local s = o:matching("^(ThreadPoolExecutor%-0_[01]): sleeping " .. n .. "$")
    local d = o:matching("^(ThreadPoolExecutor%-0_[01]): done with " .. n .. "$")
    o:check(#s == 1 and #d == 1 and s[1][1] == d[1][1], "task " .. n .. " not slept and done by one worker")
    o:order{": sleeping " .. n .. "\n", ": done with " .. n .. "\n"}
  end
end

EXPECT.conf2_submit = function(o)
  o:order{"main: starting\n", "main: future: <Future at 0x", "main: waiting for results\n",
          "main: result: 0.5\n", "main: future after result: <Future at 0x"}
  o:order{"ThreadPoolExecutor-0_0: sleeping 5\n", "ThreadPoolExecutor-0_0: done with 5\n", "main: result: 0.5"}
  local before = o.out:match("main: future: <Future at (0x%x+) state=%a+>\n")
  local after = o.out:match("main: future after result: <Future at (0x%x+) state=finished returned number>\n")
  o:check(before and before == after, "the future's tostring is not the expected one, twice")
end

EXPECT.conf3_as_completed = function(o)
  o:check(o:lines()[1] == "main: starting", "main: starting is not first")
  o:set("^main: result:", {"main: result: (1, 0.1)", "main: result: (2, 0.2)", "main: result: (3, 0.3)",
                           "main: result: (4, 0.4)", "main: result: (5, 0.5)"})
end

EXPECT.conf4_wait = function(o)
  local done, not_done = o.out:match("^main: starting\ndone={(.*)}, not_done={(.*)}\n$")
  o:check(done, "no done/not_done line")
  o:check(select(2, done:gsub("<Future at 0x%x+ state=finished returned number>", "")) == 5,
    "done does not list five finished futures")
  o:check(not_done == "", "not_done is not empty")
end

EXPECT.conf5_callback = function(o)
  o:equals("main: starting\n5: sleeping\n5: done\n5: value returned: 0.5\n")
end

EXPECT.conf6_cancel = function(o)
  local order = {"main: starting\n"}
  for i = 10, 1, -1 do order[#order + 1] = "main: submitting " .. i .. "\n" end
  for i = 1, 8 do order[#order + 1] = i .. ": canceled\n" end
  order[#order + 1] = "main: did not cancel 9\n"
  order[#order + 1] = "main: did not cancel 10\n"
  o:order(order)
  for _, n in ipairs{9, 10} do
    o:order{n .. ": sleeping\n", n .. ": done\n", n .. ": not canceled\n"}
  end
  for i = 1, 8 do o:lacks("\n" .. i .. ": sleeping") end
end

EXPECT.conf7_exception = function(o)
  o:equals('main: starting\n5: starting\nmain: error: the value 5 is no good\n'
    .. 'main: saw error "the value 5 is no good" when accessing result\n')
end

EXPECT.conf8_context_manager = function(o)
  local lines = o:lines()
  o:check(lines[1] == "main: starting" and lines[6] == "main: done" and #lines == 6, "wrong frame")
  o:set("^%d$", {"1", "2", "3", "4"})
end

EXPECT.deadlock1 = function(o)
  -- running() is asked 50 ms after submit: true unless the machine is slow.
  o:check(o.out:match("^%a+\n%a+\na: DeadlockError: [^\n]+\nb: DeadlockError: [^\n]+\n$"),
    "not two running() lines, then a DeadlockError for a and for b")
end

EXPECT.deadlock2 = function(o)
  o:check(o.out:match("^DeadlockError: [^\n]+\n$"), "no single DeadlockError line")
end

EXPECT.wait_forever = EXPECT.deadlock2

EXPECT.wait_forever_fixed = function(o) o:equals("[(1, 4), (2, 5), (3, 6)]\n") end

EXPECT.conf9_process_pids = function(o)
  local runs = o:matching("^ran task (%d) in process (%d+)$")
  local pids, distinct = {}, 0
  for i, r in ipairs(runs) do
    o:check(tonumber(r[1]) == 6 - i, "tasks out of input order")
    if not pids[r[2]] then pids[r[2]], distinct = true, distinct + 1 end
  end
  o:check(#runs == 5 and #o:lines() == 5, "not five task lines")
  o:check(distinct >= 1 and distinct <= 2, "more processes than max_workers")
end

EXPECT.conf10_broken_pool = function(o)
  o:order{"getting the pid for one worker\n", "killing process ", "submitting another task\n",
          "could not start new tasks: BrokenProcessPool: "}
end

EXPECT.conf11_primes = function(o) o:equals(PRIMES_OUTPUT) end
EXPECT.primes = EXPECT.conf11_primes
EXPECT.mpi_primes = EXPECT.conf11_primes

EXPECT.conf12_load_url = function(o)
  local pat = "^'http://127%.0%.0%.1:%d+"
  o:check(#o:matching(pat .. "/pages/www%.foxnews%.com/' page is %d+ bytes$") == 1, "foxnews")
  o:check(#o:matching(pat .. "/pages/www%.cnn%.com/' page is %d+ bytes$") == 1, "cnn")
  o:check(#o:matching(pat .. "/pages/www%.bbc%.co%.uk/' page is %d+ bytes$") == 1, "bbc")
  o:check(#o:matching(pat .. "/status/403' generated an exception: HTTP Error 403: Forbidden$") == 1, "wsj")
  o:check(#o:matching(pat .. "/missing/some%-made%-up%-domain%.com/' generated an exception: "
    .. "HTTP Error 404: Not Found$") == 1, "made-up domain")
  o:check(#o:lines() == 5, "not five lines")
end

EXPECT.pydoc_load_url = function(o)
  local pat = "^'http://127%.0%.0%.1:%d+"
  for _, site in ipairs{"www%.foxnews%.com", "www%.cnn%.com", "europe%.wsj%.com", "www%.bbc%.co%.uk"} do
    o:check(#o:matching(pat .. "/pages/" .. site .. "/' page is %d+ bytes$") == 1, site)
  end
  o:check(#o:matching(pat .. "/status/500' generated an exception: "
    .. "HTTP Error 500: Internal Server Error$") == 1, "made-up domain")
  o:check(#o:lines() == 5, "not five lines")
end

local FORMS = {"f1040.pdf", "f1040a.pdf", "f1040ez.pdf", "f1040es.pdf", "f1040sb.pdf"}

EXPECT.downloader_as_completed = function(o)
  local want = {}
  for i, name in ipairs(FORMS) do want[i] = "Finished downloading " .. name end
  o:set("", want)
end

EXPECT.downloader_map = function(o)
  local want = {}
  for i, name in ipairs(FORMS) do want[i] = "Finished downloading " .. name .. "\n" end
  o:equals(table.concat(want))
end

EXPECT.pipeline = function(o)
  local names = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
  local lines = o:lines()
  o:check(#lines == #names, "not one line per page")
  for i, name in ipairs(names) do -- sorted by the script
    o:check((lines[i] or ""):match("^" .. name .. ": title \"" .. name
      .. "\", %d+ words, parsed by parse_[01]$"), name)
  end
end

EXPECT.submit_pow = function(o)
  -- Python's pow(323, 1235): 3099 digits.
  o:check(o.out:match("^%d+\n$") and #o.out == 3100, "not a 3099-digit number")
  o:check(o.out:sub(1, 20) == "73301874197116625252", "leading digits differ")
  o:check(o.out:sub(-21, -2) == "96527027073630500507", "trailing digits differ")
end

EXPECT.file_copy = function(o)
  o:equals("src1.txt -> dest1.txt: 26000 bytes, identical\n"
    .. "src2.txt -> dest2.txt: 52000 bytes, identical\n"
    .. "src3.txt -> dest3.txt: 78000 bytes, identical\n"
    .. "src3.txt -> dest4.txt: 78000 bytes, identical\n")
end

EXPECT.flags_sequential = function(o)
  flag_downloads(o)
  -- Strictly one after the other: download, show, download, show...
  local order = {}
  for i, cc in ipairs(POP20) do
    order[#order + 1] = ("/flags/%s/%s.gif\n"):format(cc:lower(), cc:lower())
    order[#order + 1] = cc .. " "
  end
  o:order(order)
end

EXPECT.flags_threadpool = flag_downloads
EXPECT.flags_as_completed = flag_downloads
EXPECT.flags_processpool = flag_downloads

EXPECT.loiter = function(o)
  o:check(o:lines()[1]:match("^%[ *%d+%.%d%ds%] Script starting$"), "Script starting is not first")
  o:has("] results: ")
  local order = {}
  for n = 0, 4 do
    o:order{("loiter(%d): doing nothing for %ds...\n"):format(n, n), ("loiter(%d): done.\n"):format(n)}
    o:order{("loiter(%d): done.\n"):format(n), ("] result %d: %d\n"):format(n, n * 10)}
    order[#order + 1] = ("] result %d: %d\n"):format(n, n * 10)
  end
  o:order(order)
end

EXPECT.fetch_url = function(o)
  local seq, con = seconds(o, "Sequential"), seconds(o, "Concurrent")
  o:check(#o:lines() == 2, "not two lines")
  o:check(con < seq, "the thread pool was not faster")
end

EXPECT.cpu_intensive = function(o)
  seconds(o, "Sequential")
  seconds(o, "Parallel")
  o:has("results: 8999995500000500000 (x4), same: true\n")
end

EXPECT.submit_future_objects = function(o)
  o:equals("Task A done: false\nTask B completed in 1s\nTask A completed in 2s\nTask C completed in 3s\n")
end

EXPECT.as_completed_sources = function(o)
  local sources = {}
  for i, m in ipairs(o:matching("^Source (%d): Data from source (%d) %(took %d%.%d%ds%)$")) do
    o:check(m[1] == m[2], "a result under the wrong source")
    sources[i] = m[1]
  end
  table.sort(sources)
  o:check(table.concat(sources) == "01234" and #o:lines() == 5, "not one line per source")
end

EXPECT.wait_first_completed = function(o)
  o:equals("First completed: Task 2 done\nStill running: 2\nCompleted: Task 1 done\nCompleted: Task 3 done\n")
end

EXPECT.callbacks = function(o)
  o:check(o:lines()[1] == "Main thread: tasks submitted", "tasks submitted is not first")
  o:has("Main thread: done waiting\n")
  o:set("^Callback", {"Callback: result is 0", "Callback: result is 1", "Callback: result is 4",
                      "Callback: result is 9", "Callback: result is 16"})
end

EXPECT.exceptions = function(o)
  o:set("^Task", {"Task 0: 0", "Task 1: 2", "Task 2: 4", "Task 3 failed: Bad value: 3", "Task 4: 8"})
  local lines = o:lines()
  o:check(#lines == 6 and lines[6] == "Exception occurred: Bad value: 3", "no exception() line last")
end

EXPECT.timeouts = function(o)
  o:equals("Task timed out!\nCompleted after 1s\nSome tasks didn't complete in time\n")
end

EXPECT.cancel_tasks = function(o)
  o:equals("Future 2 cancelled: true\nFuture 3 cancelled: true\nFuture 1 cancelled: false\n")
end

EXPECT.context_manager = function(o)
  o:equals("All tasks completed\n5 of 5 futures done\n")
end

EXPECT.map_chunking = function(o)
  seconds(o, "No chunking")
  seconds(o, "With chunking")
  o:has("results: 20000 items, in order: true\n")
end

EXPECT.parallel_downloads = function(o)
  local lines = o:lines()
  o:check(lines[1] == "Starting downloads...", "no start line")
  local pat = "^OK: http://127%.0%.0%.1:%d+"
  for _, site in ipairs{"/pages/www%.python%.org", "/pages/www%.github%.com", "/pages/www%.google%.com"} do
    o:check(#o:matching(pat .. site .. " %- %d+ bytes$") == 1, site)
  end
  o:check(lines[5] and lines[5]:match(pat .. "/delay/0%.5 %- %d+ bytes$"), "the slow endpoint is not last")
  o:check(#lines == 6 and lines[6]:match("^Total time: %d+%.%d%ds$"), "no total time last")
end

-- Not a document example: the README's tour; checked loosely, it is its own.
EXPECT.demo = function(o)
  o:has("1099726899285419 is prime: false\n")
  o:has(" workers ")
end

local function list_scripts()
  local names = {}
  local p = io.popen("ls scripts")
  for file in p:lines() do
    local name = file:match("^(.+)%.lua$")
    if name then names[#names + 1] = name end
  end
  p:close()
  table.sort(names)
  return names
end

describe("scripts/", function()
  local names = list_scripts()

  it("has a check here for every script, and a script for every check", function()
    local present = {}
    for _, name in ipairs(names) do
      present[name] = true
      assert(EXPECT[name], "no check for scripts/" .. name .. ".lua")
    end
    for name in pairs(EXPECT) do
      assert(present[name], "no scripts/" .. name .. ".lua")
    end
  end)

  for _, name in ipairs(names) do
    local check = EXPECT[name]
    if check then
      it(name .. ".lua", function()
        for _, feature in ipairs(needs(name)) do
          if not EXPORTS[feature] then pending("needs " .. feature) end
        end
        local out, err, code = run(name)
        local o = setmetatable({out = out, err = err}, Output)
        if code == 124 then o:fail(("timed out after %ds"):format(TIMEOUT)) end
        if code ~= 0 then o:fail("exit status " .. tostring(code)) end
        if err ~= "" then o:fail("stderr is not empty") end
        check(o)
      end)
    end
  end
end)
