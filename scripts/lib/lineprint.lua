-- print() for code that runs in several threads at once. Lua's print writes
-- each argument and then the newline in separate calls, so two threads
-- printing together can interleave their pieces ("ab\n\n"); this one writes
-- each line in one call, and stdio keeps a single call whole.
--
--   local print = require "lineprint"
--
-- A task that calls it carries it along as an upvalue.
return function(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  io.stdout:write(table.concat(parts, "\t") .. "\n")
  io.stdout:flush()
end
