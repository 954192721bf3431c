-- A scratch directory for the examples that write files, removed with
-- everything in it when the object is closed (`local d <close> = tmpdir.new()`).

local Dir = {}
Dir.__index = Dir

function Dir:close()
  if self.path then
    os.execute("rm -rf '" .. self.path .. "'")
    self.path = nil
  end
end
Dir.__close = Dir.close
Dir.__gc = Dir.close

function Dir:join(name)
  return self.path .. "/" .. name
end

local M = {}

function M.new()
  -- Lua has no mkdtemp: os.tmpname() reserves a unique name as a file,
  -- which is replaced by a directory of the same name.
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir -m 700 '" .. path .. "'"), "cannot create " .. path)
  return setmetatable({path = path}, Dir)
end

return M
