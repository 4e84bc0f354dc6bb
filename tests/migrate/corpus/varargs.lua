-- mobility-check: every=0,3,100,1000 strict args=alpha beta 3
-- Varargs: counting, nils, passing through, table.pack/unpack, the main
-- chunk's own ... (the script's arguments) across moves.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

print("script args", select("#", ...), ...)
print("arg table", #arg, arg[1], arg[2], arg[3])
move()
print("script args after move", select("#", ...), ...)

local function count(...) return select("#", ...) end
local function pass(...) move(); return ... end
print("count", count(), count(nil), count(nil, nil), count(1, nil, 3, nil))
print("pass", pass(1, nil, "x", nil))
print("count pass", count(pass(nil, nil, nil)))

local function tail(n, ...)
  if n == 0 then return ... end
  return tail(n - 1, n, ...)
end
print("tail", tail(6))

local p = table.pack(1, nil, 3, nil)
move()
print("pack", p.n, p[1], p[2], p[3], p[4])
print("unpack", table.unpack({1, 2, 3, 4, 5}, 2, 4))
print("unpack empty", select("#", table.unpack({}, 1, 0)))

local function sum(...)
  local s = 0
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if i % 3 == 0 then move() end
    s = s + v
  end
  return s
end
print("sum", sum(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
print("select negative", select(-2, "a", "b", "c"))

-- A vararg function suspended in the middle while holding its varargs.
local function hold(...)
  local before = select("#", ...)
  move()
  move()
  return before, select("#", ...), ...
end
print("hold", hold("a", nil, "c", nil, nil))

-- Many values.
local many = {}
for i = 1, 200 do many[i] = i end
print("many", count(table.unpack(many)), sum(table.unpack(many)))
