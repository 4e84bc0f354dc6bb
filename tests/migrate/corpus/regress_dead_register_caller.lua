-- mobility-check: every=0 strict
-- Engine regression: table.concat leaves its buffer's light userdata in a
-- dead register of the main chunk's frame; the script then moves from
-- inside an __index metamethod, so that frame is not the top one. Its dead
-- registers must move (as nil) just as the top frame's do. (Refused with
-- "light userdata at root.field 'co'.stack[12]".)
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

-- An iterator function that moves on every call.
local function iter(n)
  local i = 0
  return function()
    move()
    i = i + 1
    if i <= n then return i, i * i end
  end
end
local s = {}
for i, sq in iter(5) do s[#s + 1] = i .. "=" .. sq end
print(table.concat(s, " "))

-- __index chain of functions, each moving.
local base = setmetatable({}, { __index = function(_, k) move(); return "base:" .. k end })
local mid = setmetatable({}, { __index = function(_, k) move(); return base[k] .. "+mid" end })
print(mid.x, mid.y)

