-- mobility-check: every=0 strict
-- Engine regression: objects that moved are finalized in plain Lua's order
-- (reverse order of marking), here 3 2 1.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end
local held = {}
for i = 1, 3 do held[i] = setmetatable({ id = i }, { __gc = function(o) print("gc", o.id) end }) end
move()
held = nil
collectgarbage()
print("end")
