-- mobility-check: every=0,1,7,100 strict
-- os.exit with a status after output written with print and io.write, both
-- still buffered when it is called: everything must come out.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

for i = 1, 20 do
  io.write("line ", i, "\n")
  if i % 5 == 0 then move() end
end
print("about to exit")
local function deep(n) if n == 0 then move(); os.exit(7) end deep(n - 1) end
deep(10)
print("not reached")
