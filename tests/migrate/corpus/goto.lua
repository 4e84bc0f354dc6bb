-- mobility-check: every=0,1,7,100,1000 strict
-- goto: continue, breaking nested loops, backward jumps, across moves.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local odds = {}
for i = 1, 15 do
  if i % 2 == 0 then goto continue end
  odds[#odds + 1] = i
  move()
  ::continue::
end
print("odds", table.concat(odds, ","))

local found
for i = 1, 9 do
  for j = 1, 9 do
    if i * j == 42 then
      found = i .. "x" .. j
      goto done
    end
  end
end
::done::
print("found", found)

do
  local n, acc = 0, {}
  ::again::
  n = n + 1
  acc[#acc + 1] = n
  if n % 4 == 0 then move() end
  if n < 10 then goto again end
  print("backward", table.concat(acc, " "))
end

-- goto out of a block that holds a closure over a local of the block.
local keep = {}
for i = 1, 3 do
  local x = i * 10
  keep[i] = function() return x end
  if i == 2 then goto skip end
  x = x + 1
  ::skip::
end
move()
print("closures", keep[1](), keep[2](), keep[3]())

-- A state machine written with goto.
local function machine(input)
  local i, out = 1, {}
  ::start::
  if i > #input then goto finish end
  do
    local c = input:sub(i, i)
    i = i + 1
    if c == "a" then out[#out + 1] = "A"; goto start end
    if c == "b" then move(); out[#out + 1] = "B"; goto start end
    out[#out + 1] = "?"
    goto start
  end
  ::finish::
  return table.concat(out)
end
print("machine", machine("abcabba"))
