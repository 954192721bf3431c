-- The luafutures command (bin/luafutures, built by `make`): every option and
-- every way out, each run as a child process with its stdout, stderr and
-- exit status checked. This process never loads the module itself.

local CLI = "bin/luafutures"
local TIMEOUT = 30 -- seconds per run; a hang fails instead of blocking

local function q(s) return "'" .. s:gsub("'", [['\'']]) .. "'" end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local tmpfiles = {}
local function tmpfile(text)
  local path = os.tmpname()
  tmpfiles[#tmpfiles + 1] = path
  if text then spit(path, text) end
  return path
end

-- Runs the command with `args` (shell words, already quoted) and returns
-- stdout, stderr and the exit status. opts.stdin: text to feed it (else
-- /dev/null); opts.env: words put before it (`env -u LUA_CPATH`, `X=1`);
-- opts.cli: another build of the command.
local function run(args, opts)
  opts = opts or {}
  local err = tmpfile()
  local input = opts.stdin and tmpfile(opts.stdin) or "/dev/null"
  local cmd = ("%s timeout %d %s %s <%s 2>%s"):format(
    opts.env or "", TIMEOUT, opts.cli or CLI, args, input, err)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local _, how, code = p:close()
  assert(how == "exit", cmd .. " ended by " .. tostring(how))
  return out, slurp(err), code
end

-- A script file holding `text`; its path.
local function script(text) return tmpfile(text) end

local USAGE = "usage: " .. CLI .. " [options] [script [args]]"
local LUA = "lua5.4" -- the interpreter the command must match

-- Replaces every plain occurrence of `what` in s.
local function replace(s, what, by)
  return (s:gsub(what:gsub("%p", "%%%0"), (by:gsub("%%", "%%%%"))))
end

-- Runs `args` under lua5.4 and under the command, with the same opts, and
-- returns both {stdout, stderr, status}, the program's name (argv[0], in
-- messages and arg[-n]) written PROG, the command's -v prefix dropped.
local function both(args, opts)
  opts = opts or {}
  local function one(cli)
    local o = setmetatable({cli = cli}, {__index = opts})
    local out, err, code = run(args, o)
    out, err = replace(out, cli, "PROG"), replace(err, cli, "PROG")
    out = out:gsub("luafutures [%w.]+, (Lua 5%.4)", "%1")
    return {out, err, code}
  end
  return one(LUA), one(CLI)
end

-- Asserts the command does exactly what lua5.4 does; returns that.
local function same(args, opts)
  local want, got = both(args, opts)
  assert.same(want, got, args)
  return got
end

-- Whether a program is linked with GNU readline (which echoes the REPL's
-- piped input).
local function readline(prog)
  local p = io.popen("ldd $(command -v " .. prog .. ") 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out:find("libreadline", 1, true) ~= nil
end

-- Under `make test SANITIZE=...` the sanitized command needs no preload;
-- the preloaded run leaves this spec to a second busted run without it
-- (see the Makefile's test-lua), since TSan's preload breaks /bin/sh.
if (os.getenv("LD_PRELOAD") or ""):find("lib[at]san") then
  describe("luafutures", function()
    it("runs as children", function()
      pending("under a sanitizer preload: run again without it")
    end)
  end)
  return
end

describe("luafutures", function()
  setup(function()
    assert(os.execute("test -x " .. CLI), CLI .. " is not built: run make")
  end)

  teardown(function()
    for _, path in ipairs(tmpfiles) do os.remove(path) end
  end)

  it("sleeps forever on sleep(math.huge) rather than returning", function()
    -- Killed by timeout(1) (status 124) unless it returns at once.
    local p = assert(io.popen("timeout 0.3 " .. CLI .. " -e "
      .. q'require("concurrent.futures").sleep(math.huge) print("woke")' .. " 2>&1"))
    local out = p:read("a")
    local _, _, code = p:close()
    assert.same({"", 124}, {out, code})
  end)

  describe("does what lua5.4 does", function()
    local args_script = [[
      print(select("#", ...), ...)
      for i = -4, 4 do io.write(tostring(arg[i]), " ") end
      print()
    ]]

    for _, case in ipairs{
      {"-e stat", "-e " .. q'print(1 + 1)'},
      {"several -e, attached or not", "-e " .. q'x = 1' .. " -e" .. q'print(x + 1)'},
      {"an -e error", "-e " .. q'error("early")' .. " -e " .. q'print("not run")'},
      {"an -e syntax error", "-e " .. q'x = = 1'},
      {"-l mod", "-l string -e " .. q'print(string.rep("a", 3))'},
      {"-l g=mod", "-l s=string -e " .. q'print(s.rep("b", 2), string ~= nil)'},
      {"-l of a missing module", "-l no_such_module_x -e " .. q'print(1)'},
      {"-W, in order with -e", "-e " .. q'warn("before")' .. " -W -e " .. q'warn("after")'},
      {"-W without -e", "-W"},
      {"-v", "-v"},
      {"-v then -e", "-v -e " .. q'print("after")'},
      {"the generational collector", "-e " .. q'print(collectgarbage("incremental"))'},
      {"stdin as a file when no script", "", {stdin = 'print("piped", ...)'}},
      {"- runs stdin with the arguments", "- a b", {stdin = 'print("in", ...)'}},
      {"-- alone runs stdin", "--", {stdin = 'print("in", ...)'}},
      {"-- then - is a file name", "-- - x", {stdin = 'print("in")'}},
      {"-e leaves stdin alone", "-e " .. q'print(io.read("a"))', {stdin = "data"}},
      {"-l does not", "-l string", {stdin = 'print("ran")'}},
      {"... from arg after -e changed it", "-e " .. q'arg[1] = 100' .. " - a b",
        {stdin = "print(...)"}},
      {"... shortened by -e", "-e " .. q'arg[2] = nil' .. " - a b c",
        {stdin = "print(select('#', ...), ...)"}},
      {"'arg' is not a table", "-e " .. q'arg = 1' .. " -", {stdin = "print(...)"}},
      {"-E ignores LUA_INIT and LUA_PATH", "-E -e " .. q'print(x, package.path:find("nowhere", 1, true))',
        {env = "LUA_INIT='x = 5' LUA_PATH='/nowhere/?.lua'"}},
      {"LUA_INIT", "-e " .. q'print(x)', {env = "LUA_INIT='x = 5'"}},
      {"LUA_INIT_5_4 first", "-e " .. q'print(x)', {env = "LUA_INIT='x = 5' LUA_INIT_5_4='x = 6'"}},
      {"a failing LUA_INIT", "-e " .. q'print(1)', {env = "LUA_INIT='error(\"bad\")'"}},
      {"LUA_INIT=@missing", "-e " .. q'print(1)', {env = "LUA_INIT=@/nonexistent/init.lua"}},
      {"a missing script", "/nonexistent/dir/script.lua"},
      {"an error object without __tostring", "-e " .. q'error({})'},
      {"a nil error", "-e " .. q'error()'},
      {"an error object with __tostring", "-e " ..
        q'error(setmetatable({}, {__tostring = function() return "custom!" end}))'},
      {"a __tostring that does not give a string", "-e " ..
        q'error(setmetatable({}, {__tostring = function() return 42 end}))'},
      {"os.exit(3)", "-e " .. q'os.exit(3) print("no")'},
      {"os.exit(true)", "-e " .. q'os.exit(true) print("no")'},
      {"os.exit(false)", "-e " .. q'os.exit(false) print("no")'},
      {"os.exit(2, true)", "-e " .. q'os.exit(2, true)'},
      {"os.exit from a coroutine", "-e " .. q'coroutine.wrap(function() os.exit(4) end)()'},
      {"a bad os.exit", "-e " .. q'os.exit("x")'},
    } do
      it(case[1], function() same(case[2], case[3]) end)
    end

    it("gives a script arg and ... as lua.c does", function()
      local s = script(args_script)
      same(s .. " one two")
      same("-e " .. q'x = 1' .. " -W " .. s .. " one")
      same("-- " .. s .. " -v -e")
      same("-e " .. q'arg[1] = "changed"; arg[3] = "added"' .. " " .. s .. " one")
      same("-e " .. q'setmetatable(arg, {__len = function() return 1 end})' .. " " .. s .. " a b")
      same("-e " .. q'print(arg[0], #arg)')
    end)

    it("runs LUA_INIT=@file, whose errors name the file", function()
      same("-e " .. q'print(y)', {env = "LUA_INIT=@" .. script("y = 'from file'")})
      same("-e " .. q'print(y)', {env = "LUA_INIT_5_4=@" .. script("error('init broke')")})
    end)

    it("reports script errors with argv[0] and the traceback", function()
      same(script('local function f() error("it broke") end\nf()\nprint("not here")\n'))
      same(script("x = = 1\n"))
      same(script('error(setmetatable({}, {__tostring = function() return "obj" end}))'))
      same(script('error("no position", 0)'))
      same(script('error(12)'))
      -- argv[0] as given, whatever it is
      local want, got = both("-e " .. q'error("x")')
      assert.equal("PROG: (command line):1: x", got[2]:match("^[^\n]*"))
      assert.same(want, got)
    end)

    it("prints the usage on a bad option, with lua5.4's lines in order", function()
      for _, bad in ipairs{"-x", "-vx", "-ix", "-Ex", "-Wx", "--x", "--version",
                           "-e", "-l", "-e -x", "-l -i"} do
        local want, got = both(bad)
        assert.same({"", 1}, {got[1], got[3]}, bad)
        assert.same({want[1], want[3]}, {got[1], got[3]}, bad)
        local lines = {}
        for line in got[2]:gmatch("[^\n]+") do lines[#lines + 1] = line end
        local i = 1
        for line in want[2]:gmatch("[^\n]+") do
          while lines[i] and lines[i] ~= line do i = i + 1 end
          assert(lines[i], ("%s: lua5.4's line %q missing or out of order in\n%s")
            :format(bad, line, got[2]))
        end
      end
    end)

    describe("interactively", function()
      -- Both must be linked with readline, which echoes piped input.
      local echo = readline(CLI) and readline(LUA)
      local busted_it = it
      local function it(name, fn)
        busted_it(name, function()
          if not echo then return pending("one of them is built without readline") end
          fn()
        end)
      end

      local function repl(lines, args)
        return same(args or "-i", {stdin = table.concat(lines, "\n") .. "\n"})
      end

      it("prints expressions, =expr and what statements print", function()
        local got = repl{"x = 20 + 1", "=x", "x * 2, 'two'", "return x, nil",
                         "for i = 1, 2 do", "  print('loop', i)", "end", "", "1;"}
        assert.truthy(got[1]:find("> =x\n21\n", 1, true), got[1])
      end)

      it("reports errors with no program name and goes on", function()
        local got = repl{"error('boom')", "error({})", "error(setmetatable({}, "
          .. "{__tostring = function() return 'obj' end}))", "x = = 1", "print('next')"}
        assert.matches("^stdin:1: boom\nstack traceback:", got[2])
      end)

      it("shows _PROMPT and _PROMPT2 through __tostring", function()
        repl{"_PROMPT = setmetatable({}, {__tostring = function() return 'P1: ' end})",
             "_PROMPT2 = 'P2: '", "if true then", "print('in')", "end", "_PROMPT = nil", "1"}
      end)

      it("ends inside an unfinished statement as lua5.4 does", function()
        repl{"for i = 1, 2 do"}
        repl{"_PROMPT2 = 'more? '", "while true do"}
      end)

      it("reports an error of print", function()
        repl{"print = function() error('no print') end", "1", "2"}
      end)

      it("runs after a script, keeping its globals", function()
        local s = script("answer = 42")
        local got = repl({"answer"}, "-i " .. s)
        assert.truthy(got[1]:find("> answer\n42\n", 1, true), got[1])
      end)

      it("stops at os.exit", function()
        repl{"print(1)", "os.exit(5)", "print(2)"}
      end)
    end)
  end)

  describe("its own additions", function()
    it("-v prints one line ending with Lua's own", function()
      local out, err, code = run("-v")
      local lua = io.popen(LUA .. " -v"):read("a")
      assert.same({"", 0}, {err, code})
      assert.equal(lua, out:match("^luafutures %d+%.%d+%.%d+, (.*)$"))
    end)

    it("--help lists every option on stdout", function()
      local out, err, code = run("--help")
      assert.same({"", 0}, {err, code})
      assert.equal(1, (out:find(USAGE, 1, true)))
      for _, opt in ipairs{"-e stat", "-i", "-l mod", "-l g=mod", "-m mod", "-j N",
                           "-v", "-E", "-W", "--help", "--", "-   "} do
        assert.truthy(out:find("\n  " .. opt, 1, true), opt)
      end
    end)

    it("-m and -j need their argument", function()
      for _, opt in ipairs{"-m", "-j", "-m -e"} do
        local out, err, code = run(opt)
        assert.equal("", out)
        assert.equal(CLI .. ": '" .. opt:sub(1, 2) .. "' needs argument\n" .. USAGE .. "\n",
                     err:match("^[^\n]*\n[^\n]*\n"))
        assert.equal(1, code)
      end
    end)
  end)

  describe("the REPL on a terminal", function()
    local PTYRUN = "build/tools/ptyrun"

    local function drive(prog, steps)
      local words = {}
      for _, w in ipairs(steps) do words[#words + 1] = q(w) end
      local p = io.popen(("TERM=xterm %s %s -- %s 2>&1"):format(
        PTYRUN, table.concat(words, " "), prog))
      local out = p:read("a")
      local _, _, code = p:close()
      return out, code
    end

    it("edits lines with readline: up-arrow recalls the last one", function()
      if not io.open(PTYRUN) then return pending("no " .. PTYRUN .. ": run make test") end
      if not readline(CLI) then return pending(CLI .. " is built without readline") end
      local line = "n = (n or 0) + 1 print('run ' .. n)\r"
      local steps = {"> ", line, "run 1", "", "> ", "\27[A\r", "run 2", "", "> ", "\4"}
      local out, code = drive(CLI, steps)
      assert.equal(0, code, out)
      assert.matches("^luafutures [%w.]+, Lua 5%.4", out)
      local one, two = out:find("run 1\r\n", 1, true), out:find("run 2\r\n", 1, true)
      assert.truthy(one and two and one < two, out)
      -- lua5.4 behaves the same way on the same keys
      local lua_out, lua_code = drive(LUA, steps)
      assert.equal(0, lua_code)
      assert.equal((lua_out:gsub("^[^\n]*\n", "")), (out:gsub("^[^\n]*\n", "")))
    end)
  end)

  describe("-j", function()
    local show = q[[
      local futures = require "concurrent.futures"
      print(tostring(futures.ThreadPoolExecutor()):match("workers=%d+/%d+"))
      print(tostring(futures.ThreadPoolExecutor(5)):match("workers=%d+/%d+"))
      print(tostring(futures.ThreadPoolExecutor{thread_name_prefix = "p"}):match("workers=%d+/%d+"))
    ]]

    it("sets max_workers of executors that name none", function()
      local out, err, code = run("-j 3 -e " .. show)
      assert.same({"workers=0/3\nworkers=0/5\nworkers=0/3\n", "", 0},
                  {out, err, code})
      out = run("-j7 -e " .. show)
      assert.equal("workers=0/7\nworkers=0/5\nworkers=0/7\n", out)
    end)

    it("leaves the default alone when absent", function()
      local out = run("-e " .. show)
      local max = tonumber(out:match("^workers=0/(%d+)\n"))
      local cpus = tonumber((run("-e " .. q'io.write(require"concurrent.futures".cpu_count())')))
      assert.equal(math.min(32, cpus + 4), max)
    end)

    it("rejects a bad number", function()
      for _, bad in ipairs{"0", "x", "3x", "500000"} do
        local out, err, code = run("-j " .. bad .. " -e " .. q'print(1)')
        assert.equal("", out)
        assert.equal((CLI .. ": '-j' needs a number of workers from 1 to "
                      .. "100000, got '%s'\n"):format(bad),
                     err:match("^[^\n]*\n"))
        assert.truthy(err:find(USAGE, 1, true))
        assert.equal(1, code)
      end
    end)
  end)

  describe("-m mod", function()
    local dir = os.tmpname()
    os.remove(dir)
    local function env() return "LUA_PATH=" .. q(dir .. "/?.lua;;") end

    setup(function()
      assert(os.execute("mkdir -p " .. q(dir)))
      spit(dir .. "/runner.lua", [[
        local M = {}
        function M.main(chunk, ...)
          print("runner", select("#", ...), table.concat({...}, " "), arg[0])
          chunk(...)
          print("runner done")
        end
        return M
      ]])
      spit(dir .. "/second.lua", [[
        return {main = function(chunk, ...) print("second") return chunk(...) end}
      ]])
      spit(dir .. "/skipper.lua", [[
        return {main = function() print("not running it") end}
      ]])
      spit(dir .. "/failing.lua", [[
        return {main = function() error("no ranks here") end}
      ]])
      spit(dir .. "/plain.lua", "plain_loaded = true\nreturn {value = 1}\n")
    end)

    teardown(function() os.execute("rm -rf " .. q(dir)) end)

    local s = script('print("script", table.concat({...}, " "), plain_loaded)')

    it("lets the module's main run the script, with arg as usual", function()
      local out, err, code = run("-m runner " .. s .. " a b", {env = env()})
      assert.same({"runner\t2\ta b\t" .. s .. "\nscript\ta b\tnil\nrunner done\n", "", 0},
                  {out, err, code})
    end)

    it("passes the script's ... as -e left arg", function()
      local out = run("-m runner -e " .. q'arg[1] = "x"' .. " " .. s .. " a", {env = env()})
      assert.equal("runner\t1\tx\t" .. s .. "\nscript\tx\tnil\nrunner done\n", out)
    end)

    it("runs stdin through main too", function()
      local out = run("-m runner - a", {env = env(), stdin = 'print("stdin", ...)'})
      assert.equal("runner\t1\ta\t-\nstdin\ta\nrunner done\n", out)
      out = run("-m runner", {env = env(), stdin = 'print("stdin", ...)'})
      assert.equal("runner\t0\t\t" .. CLI .. "\nstdin\nrunner done\n", out)
    end)

    it("lets main decide not to run it", function()
      local out, err, code = run("-m skipper " .. s, {env = env()})
      assert.same({"not running it\n", "", 0}, {out, err, code})
    end)

    it("uses the last -m that has a main", function()
      local out = run("-m runner -m second -m plain " .. s .. " z", {env = env()})
      assert.equal("second\nscript\tz\ttrue\n", out)
    end)

    it("runs the script as usual when the module has no main", function()
      local out, err, code = run("-m plain " .. s .. " a", {env = env()})
      assert.same({"script\ta\ttrue\n", "", 0}, {out, err, code})
      -- and sets no global of its name, unlike -l
      out = run("-m plain -e " .. q'print(plain, plain_loaded)', {env = env()})
      assert.equal("nil\ttrue\n", out)
    end)

    it("reports main's error as a script error", function()
      local out, err, code = run("-m failing " .. s, {env = env()})
      assert.same({"", 1}, {out, code})
      assert.matches("^" .. CLI:gsub("%p", "%%%0") .. ": [^\n]*failing%.lua:1: no ranks here\nstack traceback:\n", err)
    end)

    it("fails on a missing module before the script", function()
      local out, err, code = run("-m no_such_module_x " .. s, {env = env()})
      assert.same({"", 1}, {out, code})
      assert.matches("^" .. CLI:gsub("%p", "%%%0") .. ": module 'no_such_module_x' not found", err)
    end)

    it("reports a script's syntax error without calling main", function()
      local out, err, code = run("-m runner " .. script("x = = 1"), {env = env()})
      assert.same({"", 1}, {out, code})
      assert.matches(":1: unexpected symbol near '='\n$", err)
    end)
  end)

  describe("an uncaught task error", function()
    local function task_script(pool, how)
      return script(([[
        local futures = require "concurrent.futures"
        local ex <close> = futures.%s(1)
        local function work(n)
          if n > 1 then error(%s) end
          return n
        end
        %s
      ]]):format(pool, how[1], how[2]))
    end
    local by_result = "print(ex:submit(work, 5):result())"
    local by_map = "for i, v in ex:map(work, {1, 2}) do print(i, v) end"

    for _, pool in ipairs{"ThreadPoolExecutor", "ProcessPoolExecutor"} do
      it("shows the worker's traceback after the main one (" .. pool .. ")", function()
        local s = task_script(pool, {'"too big: " .. n', by_result})
        local out, err, code = run(s)
        assert.same({"", 1}, {out, code})
        local e = s:gsub("%p", "%%%0")
        assert.matches("^" .. CLI:gsub("%p", "%%%0") .. ": " .. e .. ":4: too big: 5\n"
          .. "stack traceback:\n\t%[C%]: in method 'result'\n\t" .. e .. ":7: in main chunk\n"
          .. ".*\nraised by a task; the worker's traceback:\n\t%[C%]: in function 'error'\n\t"
          .. e .. ":4: in function <" .. e .. ":3>\n", err)
      end)
    end

    it("shows it for a map's error, and after an object's string", function()
      local s = task_script("ThreadPoolExecutor", {
        'setmetatable({}, {__tostring = function() return "custom" end})', by_map})
      local out, err, code = run(s)
      assert.same({"1\t1\n", 1}, {out, code})
      local e = s:gsub("%p", "%%%0")
      assert.matches("^" .. CLI:gsub("%p", "%%%0") .. ": custom\nraised by a task; the worker's "
        .. "traceback:\n\t%[C%]: in function 'error'\n\t" .. e .. ":4: in function", err)
    end)

    it("does not show it for an error of the script itself", function()
      local s = task_script("ThreadPoolExecutor", {'"x"', [[
        local f = ex:submit(work, 2)
        local ok, e = pcall(f.result, f)
        print(ok, e)
        error("mine")]]})
      local out, err, code = run(s)
      assert.same({1}, {code})
      assert.matches("^false\t.*:4: x\n$", out)
      assert.matches(":10: mine\nstack traceback:\n", err)
      assert.falsy(err:find("raised by a task", 1, true))
    end)
  end)

  describe("concurrent.futures", function()
    it("is built in: require needs no package.cpath", function()
      local out, err, code = run("-e " .. q[[
        package.cpath = ""
        local futures = require "concurrent.futures"
        print(type(futures._VERSION), package.loaded["concurrent.futures"] == futures)
      ]], {env = "env -u LUA_CPATH -u LUA_CPATH_5_4"})
      assert.same({"string\ttrue\n", "", 0}, {out, err, code})
    end)

    it("is the built-in copy even when package.cpath finds the .so", function()
      local out, err, code = run("-e " .. q[[
        package.cpath = "./?.so;" .. package.cpath
        require "concurrent.futures"
        local maps = io.open("/proc/self/maps")
        print(maps and not maps:read("a"):find("concurrent/futures.so", 1, true))
      ]])
      assert.same({"true\n", "", 0}, {out, err, code})
    end)

    it("can be required in a worker state", function()
      local out, err, code = run("-e " .. q[[
        local futures = require "concurrent.futures"
        local ex <close> = futures.ThreadPoolExecutor(1)
        print(ex:submit(function()
          local m = require "concurrent.futures"
          return m.thread_name(), package.loaded["concurrent.futures"] == m
        end):result())
      ]], {env = "env -u LUA_CPATH -u LUA_CPATH_5_4"})
      assert.same({"ThreadPoolExecutor-0_0\ttrue\n", "", 0}, {out, err, code})
    end)

    it("linked statically, finds its worker executable beside itself", function()
      -- `make static` (part of `make test` without a sanitizer): a program
      -- with no dynamic symbol table, where dladdr() names no file
      local static = io.popen("pwd"):read("l") .. "/build-static/bin/luafutures"
      if not io.open(static) then
        pending("no statically linked build: make static")
        return
      end
      local out, err, code = run("-e " .. q[[
        local futures = require "concurrent.futures"
        for _, how in ipairs{"spawn", "fork"} do
          local ex <close> = futures.ProcessPoolExecutor{max_workers = 1, start_method = how}
          print(how, ex:submit(futures.getpid):result() ~= futures.getpid())
        end
      ]], {cli = static, env = "cd / && env -u LUAFUTURES_WORKER"})
      assert.same({"spawn\ttrue\nfork\ttrue\n", "", 0}, {out, err, code})
    end)

    it("runs scripts/demo.lua: headed sections, each number once", function()
      local out, err, code = run("scripts/demo.lua")
      assert.same({"", 0}, {err, code})
      assert.matches("^== [^\n]+ ==\n", out)
      local _, sections = out:gsub("\n\n== [^\n]+ ==\n", "")
      assert.equal(3, sections)
      local seen = {}
      for n in out:gmatch("(%d+) is prime: ") do
        assert.is_nil(seen[n], n .. " shown twice")
        seen[n] = true
      end
      assert.truthy(next(seen))
    end)
  end)

  describe("exit", function()
    local pool = [[
      local futures = require "concurrent.futures"
      local ex = futures.ThreadPoolExecutor(2)
      local fs = {}
      for i = 1, 5 do fs[i] = ex:submit(function(n) return n * n end, i) end
      for i = 1, 5 do io.write(fs[i]:result(), " ") end
      print()
      ex:submit(function() futures.sleep(0.2); print("late task ran") end)
    ]]

    it("without shutdown waits for the tasks and is clean", function()
      local out, err, code = run(script(pool))
      assert.same({"1 4 9 16 25 \nlate task ran\n", "", 0}, {out, err, code})
    end)

    it("through os.exit shuts the executors down too", function()
      local out, err, code = run(script(pool .. "\nos.exit(7)\n"))
      assert.same({"1 4 9 16 25 \nlate task ran\n", "", 7}, {out, err, code})
    end)

    it("on an error shuts the executors down too", function()
      local out, err, code = run(script(pool .. "\nerror('after submit')\n"))
      assert.equal("1 4 9 16 25 \nlate task ran\n", out)
      assert.matches(":%d+: after submit\nstack traceback:\n", err)
      assert.equal(1, code)
    end)

    it("closes <close> executors on os.exit", function()
      local out, err, code = run("-e " .. q[[
        local futures = require "concurrent.futures"
        local ex <close> = setmetatable({}, {__close = function() print("closed") end})
        os.exit(0)
      ]])
      assert.same({"closed\n", "", 0}, {out, err, code})
    end)
  end)
end)
