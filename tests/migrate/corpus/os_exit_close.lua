-- mobility-check: every=0,1,7,100 strict
-- os.exit(true, true) closes the state first: pending finalizers and
-- to-be-closed variables' owners run, in the order plain Lua runs them.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local keep = {}
for i = 1, 4 do
  keep[i] = setmetatable({ id = i }, { __gc = function(o) print("finalize", o.id) end })
  move()
end
print("exiting")
os.exit(true, true)
