-- 000 concurrent.futures notebook, "API Structure": executor.map(pow, [2,3], [2,2]).
local futures = require "concurrent.futures"

-- Lua has no integer pow (`^` always gives a float), so pow multiplies.
local function pow(base, exp)
  local r = 1
  for _ = 1, exp do r = r * base end
  return r
end

local executor <close> = futures.ThreadPoolExecutor{max_workers = 1}
for _, v in executor:map(pow, {2, 3}, {2, 2}) do
  print(v)
end
