-- A line chart as plain SVG text: axes, grid, one polyline with markers per
-- series, an optional y = x line, a legend and a title.  No library needed.
--
--   local svg = require("svgchart").line{
--     title = "...", subtitle = "...", xlabel = "...", ylabel = "...",
--     xmax = 16, ymax = 16,          -- axes start at 0
--     diagonal = "ideal",            -- label of the y = x line, or nil
--     series = {{name = "...", points = {{x, y}, ...}}, ...},
--   }
-- A series with no points is listed in the legend with its name only.
local M = {}

local W, H = 760, 520
local LEFT, RIGHT, TOP, BOTTOM = 72, 28, 78, 62
local COLORS = {"#1f6fb4", "#e0701c", "#2f9e44", "#8e44ad", "#c0392b"}
local MARKERS = {"circle", "square", "triangle", "diamond", "circle"}

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;",
    [">"] = "&gt;", ['"'] = "&quot;"}))
end

local function num(v)  -- short, locale-free coordinates
  local s = string.format("%.2f", v):gsub("%.?0+$", "")
  return s == "-0" and "0" or s
end

-- A step of 1, 2 or 5 times a power of ten giving at most `most` intervals
-- up to max; integer steps only when integer is set.
local function nice_step(max, most, integer)
  local raw = max / most
  local mag = 10 ^ math.floor(math.log(raw, 10))
  for _, m in ipairs{1, 2, 5, 10} do
    local step = m * mag
    if step >= raw then
      if integer and step < 1 then return 1 end
      return step
    end
  end
  return 10 * mag
end

local function marker(kind, x, y, color)
  local r = 4.5
  if kind == "square" then
    return string.format('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>',
      num(x - r), num(y - r), num(2 * r), num(2 * r), color)
  elseif kind == "triangle" then
    return string.format('<polygon points="%s,%s %s,%s %s,%s" fill="%s"/>',
      num(x), num(y - r - 1), num(x - r - 0.5), num(y + r - 0.5),
      num(x + r + 0.5), num(y + r - 0.5), color)
  elseif kind == "diamond" then
    return string.format('<polygon points="%s,%s %s,%s %s,%s %s,%s" fill="%s"/>',
      num(x), num(y - r - 1), num(x + r + 1), num(y), num(x), num(y + r + 1),
      num(x - r - 1), num(y), color)
  end
  return string.format('<circle cx="%s" cy="%s" r="%s" fill="%s"/>',
    num(x), num(y), num(r), color)
end

function M.line(o)
  local xmax, ymax = o.xmax, o.ymax
  local xstep = nice_step(xmax, 8, true)
  local ystep = nice_step(ymax, 8, false)
  xmax = math.ceil(xmax / xstep - 1e-9) * xstep
  ymax = math.ceil(ymax / ystep - 1e-9) * ystep
  local pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
  local function px(x) return LEFT + x / xmax * pw end
  local function py(y) return TOP + ph - y / ymax * ph end

  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">', W, H, W, H)
  add('<rect width="%d" height="%d" fill="white"/>', W, H)
  add('<text x="%d" y="28" font-size="17" font-weight="bold" text-anchor="middle">%s</text>', W // 2, esc(o.title or ""))
  if o.subtitle then
    add('<text x="%d" y="50" font-size="12" fill="#444" text-anchor="middle">%s</text>', W // 2, esc(o.subtitle))
  end

  -- grid and tick labels
  add('<g stroke="#e2e2e2" stroke-width="1">')
  for i = 0, math.floor(xmax / xstep + 0.5) do
    local x = px(i * xstep)
    add('<line x1="%s" y1="%s" x2="%s" y2="%s"/>', num(x), num(TOP), num(x), num(TOP + ph))
  end
  for i = 0, math.floor(ymax / ystep + 0.5) do
    local y = py(i * ystep)
    add('<line x1="%s" y1="%s" x2="%s" y2="%s"/>', num(LEFT), num(y), num(LEFT + pw), num(y))
  end
  add('</g>')
  add('<g font-size="12" fill="#333">')
  for i = 0, math.floor(xmax / xstep + 0.5) do
    add('<text x="%s" y="%s" text-anchor="middle">%s</text>', num(px(i * xstep)), num(TOP + ph + 18), num(i * xstep))
  end
  for i = 0, math.floor(ymax / ystep + 0.5) do
    add('<text x="%s" y="%s" text-anchor="end">%s</text>', num(LEFT - 8), num(py(i * ystep) + 4), num(i * ystep))
  end
  add('</g>')

  -- axes and their labels
  add('<g stroke="#222" stroke-width="1.2"><line x1="%s" y1="%s" x2="%s" y2="%s"/><line x1="%s" y1="%s" x2="%s" y2="%s"/></g>',
    num(LEFT), num(TOP + ph), num(LEFT + pw), num(TOP + ph), num(LEFT), num(TOP), num(LEFT), num(TOP + ph))
  add('<text x="%s" y="%d" font-size="13" text-anchor="middle">%s</text>', num(LEFT + pw / 2), H - 18, esc(o.xlabel or ""))
  add('<text x="18" y="%s" font-size="13" text-anchor="middle" transform="rotate(-90 18 %s)">%s</text>',
    num(TOP + ph / 2), num(TOP + ph / 2), esc(o.ylabel or ""))

  -- the y = x line, clipped to the plot
  local legend = {}
  if o.diagonal then
    local e = math.min(xmax, ymax)
    add('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4"/>',
      num(px(0)), num(py(0)), num(px(e)), num(py(e)))
    legend[#legend + 1] = {name = o.diagonal, dashed = true}
  end

  for i, s in ipairs(o.series) do
    local color, mk = COLORS[(i - 1) % #COLORS + 1], MARKERS[(i - 1) % #MARKERS + 1]
    if #s.points > 0 then
      local pts = {}
      for _, p in ipairs(s.points) do pts[#pts + 1] = num(px(p[1])) .. "," .. num(py(p[2])) end
      add('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>', table.concat(pts, " "), color)
      for _, p in ipairs(s.points) do add("%s", marker(mk, px(p[1]), py(p[2]), color)) end
    end
    legend[#legend + 1] = {name = s.name, color = color, marker = mk, empty = #s.points == 0}
  end

  -- legend, top left inside the plot (above the ideal line, where speedups
  -- do not go)
  local lx, ly, lh = LEFT + 14, TOP + 12, 20
  local lw = 0
  for _, e in ipairs(legend) do lw = math.max(lw, #e.name * 7 + 44) end
  add('<rect x="%s" y="%s" width="%s" height="%s" fill="white" fill-opacity="0.9" stroke="#bbb"/>',
    num(lx), num(ly), num(lw), num(#legend * lh + 8))
  for i, e in ipairs(legend) do
    local y = ly + 4 + (i - 0.5) * lh
    if e.dashed then
      add('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4"/>',
        num(lx + 8), num(y), num(lx + 32), num(y))
    elseif not e.empty then
      add('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"/>', num(lx + 8), num(y), num(lx + 32), num(y), e.color)
      add("%s", marker(e.marker, lx + 20, y, e.color))
    end
    add('<text x="%s" y="%s" font-size="12"%s>%s</text>', num(lx + 38), num(y + 4),
      e.empty and ' fill="#888"' or "", esc(e.name))
  end
  add('</svg>')
  return table.concat(out, "\n") .. "\n"
end

return M
