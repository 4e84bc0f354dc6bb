-- mobility-check: every=0,50 unpersistable
-- An open file handle cannot move: the state is not moved while the handle
-- is reachable, and the script still behaves as under plain Lua.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local f = assert(io.tmpfile())
for i = 1, 5 do
  f:write("record ", i, "\n")
  move()
end
f:seek("set")
local n = 0
for line in f:lines() do n = n + 1 end
print("records", n)
f:close()
f = nil
move()
print("closed", io.type(f))
