-- mobility-check: every=0,1,7,100 strict
-- An uncaught error ends the script with status 1 after its pending
-- to-be-closed variables are closed (they print) and finalizers run.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local g = setmetatable({}, { __gc = function() print("finalizer at close") end })
local outer <close> = setmetatable({}, { __close = function(_, e) print("closing outer with", e ~= nil) end })
print("working")
move()
local function fail()
  local inner <close> = setmetatable({}, { __close = function(_, e) print("closing inner") end })
  move()
  error({ reason = "not a string" })
end
fail()
print("not reached", g)
