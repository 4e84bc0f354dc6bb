-- mobility-check: every=0,1,7,100,1000 strict
-- Yields inside pcall/xpcall inside coroutines, and the main coroutine
-- moving while suspended inside its own pcall, xpcall and metamethods.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

-- Main: moves inside nested protected calls, results and errors intact.
print(pcall(function()
  move()
  local ok, v = xpcall(function() move(); return "deep", 2 end, debug.traceback)
  move()
  return ok, v
end))
print(pcall(pcall, function() move(); error("two levels", 0) end))
print(xpcall(function() move(); error({ n = 3 }) end, function(e) move(); return e.n * 10 end))

-- Coroutines that yield from inside pcall, several levels deep.
local co = coroutine.create(function(a)
  local r = { pcall(function()
    local b = coroutine.yield("level1", a)
    local r2 = { pcall(function()
      local c = coroutine.yield("level2", b)
      if c == "fail" then error("failed at level 2", 0) end
      return c
    end) }
    coroutine.yield("inner result", table.unpack(r2))
    return "outer done"
  end) }
  return table.unpack(r)
end)
print(coroutine.resume(co, "A"))
move()
print(coroutine.resume(co, "B"))
move()
print(coroutine.resume(co, "fail"))
move()
print(coroutine.resume(co))
print(coroutine.status(co))

-- xpcall's handler runs inside the coroutine, after a move.
local co2 = coroutine.wrap(function()
  return xpcall(function()
    coroutine.yield("waiting")
    error("late error", 0)
  end, function(e) return "handled " .. e end)
end)
print(co2())
move()
print(co2())

-- A yield inside a metamethod inside pcall inside a coroutine.
local mt = { __index = function(t, k) return coroutine.yield("index " .. k) end }
local co3 = coroutine.wrap(function()
  local obj = setmetatable({}, mt)
  local ok, v = pcall(function() return obj.field .. "!" end)
  return ok, v
end)
print(co3())
move()
print(co3("value"))

-- pcall of a yielding function from the main chunk repeatedly, with moves
-- at every iteration.
local total = 0
for i = 1, 30 do
  local ok, v = pcall(function(x) move(); if x % 7 == 0 then error(x) end return x end, i)
  if ok then total = total + v else total = total - v end
end
print("total", total)
