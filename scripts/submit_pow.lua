-- 002 Python docs, "Executor.submit": submit(pow, 323, 1235).
local futures = require "concurrent.futures"

-- Python's pow gives a 3099-digit integer; Lua integers are 64-bit, so the
-- task computes it exactly in base 10^7 limbs and returns its decimal digits.
local function pow(base, exp)
  local limbs, BASE = {1}, 10000000
  for _ = 1, exp do
    local carry = 0
    for i = 1, #limbs do
      local v = limbs[i] * base + carry
      limbs[i], carry = v % BASE, v // BASE
    end
    while carry > 0 do
      limbs[#limbs + 1], carry = carry % BASE, carry // BASE
    end
  end
  local digits = {tostring(limbs[#limbs])}
  for i = #limbs - 1, 1, -1 do digits[#digits + 1] = ("%07d"):format(limbs[i]) end
  return table.concat(digits)
end

do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 1}
  local future = executor:submit(pow, 323, 1235)
  print(future:result())
end
