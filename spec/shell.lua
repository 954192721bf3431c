-- Shared by the specs that run commands (packaging, embedding): files read
-- whole, shell quoting, and a command run outside the sanitizer preload
-- this suite may run under.
local shell = {}

-- The contents of path, or nil when it cannot be read.
function shell.slurp(path)
  local fh = io.open(path)
  if not fh then return nil end
  local text = fh:read("a")
  fh:close()
  return text
end

-- s quoted for the shell.
function shell.q(s) return "'" .. s:gsub("'", [['\'']]) .. "'" end

-- Runs cmd under sh: its success and its stdout and stderr together. With
-- fresh_make, a make it runs does not inherit the make running this suite
-- (the variables it got name the sanitizer flavour of this checkout's build).
function shell.sh(cmd, fresh_make)
  local log = os.tmpname()
  local unset = fresh_make and "-u MAKEFLAGS -u MAKELEVEL -u SANITIZE -u CFLAGS -u OPT " or ""
  local ok = os.execute(("env -u LD_PRELOAD %ssh -c %s >%s 2>&1"):format(unset, shell.q(cmd), log))
  local out = shell.slurp(log) or ""
  os.remove(log)
  return ok == true, out
end

return shell
