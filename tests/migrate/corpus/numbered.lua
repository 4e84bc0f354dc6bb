-- mobility-check: every=0,1,13,100 strict
-- Numbered output lines with a move between each, for --dump-states and
-- --resume tests: the output of a resumed run is a suffix of the whole.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local acc = {}
local function step(i)
  acc[#acc + 1] = i * i
  return #acc
end
for i = 1, 40 do
  print(string.format("line %02d %d", i, step(i)))
  move()
end
local sum = 0
for _, v in ipairs(acc) do sum = sum + v end
print("sum", sum)
