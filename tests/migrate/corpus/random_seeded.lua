-- mobility-check: every=0,1,7,100 strict
-- math.randomseed makes math.random reproducible: the generator's state
-- must move with the script.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

math.randomseed(42)
local a = {}
for i = 1, 10 do a[i] = math.random(1, 1000); move() end
print(table.concat(a, " "))
math.randomseed(7, 3)
print(math.random(100), math.random(100))
move()
print(math.random(100), math.random(100), math.random(0) ~= nil)
local f = {}
for i = 1, 5 do f[i] = string.format("%.6f", math.random()); move() end
print(table.concat(f, " "))
print(pcall(math.random, 2, 1), math.random(5, 5))
