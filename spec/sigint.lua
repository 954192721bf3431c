-- Shared by the specs that interrupt a command (interrupt_spec.lua,
-- mpi_spec.lua), loading no module of ours (interrupt_spec.lua runs from a
-- busted without the sanitizer's preload). The command's task blocks on a
-- FIFO that is opened only once the interrupted wait has said
-- "interrupted!", so a wait that the signal did not wake never ends: an
-- ordering, no sleep.
local sigint = {}

-- A fresh directory holding the FIFO `release`: dir, fifo.
function sigint.fifo()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/release"))
  return dir, dir .. "/release"
end

-- Runs cmd (stdout and stderr together), which prints "pid N" (the
-- process to interrupt) and "started" (its task runs), in either order;
-- sends SIGINT to N, waits for "interrupted!", then opens the FIFO and
-- reads the rest. Returns the output lines and the exit status (-1 for a
-- signal), and removes dir.
function sigint.run(cmd, dir, fifo)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local lines, pid, started = {}, nil, false
  while not (pid and started) do
    local l = assert(p:read("l"), "the command ended early")
    lines[#lines + 1] = l
    pid = pid or l:match("^pid (%d+)")
    started = started or l == "started"
  end
  assert(os.execute("kill -INT " .. pid))
  repeat -- the signal must end the wait while the task still blocks
    local l = assert(p:read("l"), "no interrupted! before the end:\n" .. table.concat(lines, "\n"))
    lines[#lines + 1] = l
  until l:find("interrupted!", 1, true)
  local w = assert(io.open(fifo, "w")) -- now the task may finish
  w:close()
  for l in p:lines() do lines[#lines + 1] = l end
  local _, how, status = p:close()
  os.execute("rm -rf " .. dir)
  return lines, how == "exit" and status or -1
end

return sigint
