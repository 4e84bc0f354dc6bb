-- mobility-check: every=0,7,100,1000 strict
-- Integer and float numeric for loops, with moves inside the loop body.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local function collect(a, b, c)
  local t = {}
  if c then
    for i = a, b, c do t[#t + 1] = tostring(i); if #t % 3 == 0 then move() end end
  else
    for i = a, b do t[#t + 1] = tostring(i); if #t % 3 == 0 then move() end end
  end
  return table.concat(t, " ")
end

print(collect(1, 10))
print(collect(10, 1, -3))
print(collect(1, 0))
print(collect(0, 1, 0.25))
print(collect(1, 2, 0.1))
print(collect(1.0, 3))
print(collect(3, 1.5, -0.5))
print(collect(-5, 5, 5))

-- Loops near the integer limits do not overflow.
print(collect(math.maxinteger - 2, math.maxinteger))
print(collect(math.mininteger, math.mininteger + 2))
print(collect(math.mininteger + 2, math.mininteger, -1))
print(collect(math.maxinteger - 1, math.maxinteger, 10))

-- Float limits: the loop runs with floats, the count is what IEEE gives.
local n = 0
for x = 0.0, 1.0, 0.1 do n = n + 1; if n == 5 then move() end end
print("float steps", n)

-- Zero step is an error.
print("zero step", pcall(function() for i = 1, 10, 0 do end end))
print("bad limit", pcall(function() for i = 1, "x" do end end))

-- Sum with nested loops and a move each outer iteration.
local s = 0
for i = 1, 30 do
  for j = i, 1, -1 do s = s + i * j end
  move()
end
print("nested sum", s)

-- The loop variable is a fresh local; changing it does not change the loop.
local seen = {}
for i = 1, 5 do
  local j = i
  i = i * 100
  seen[#seen + 1] = j .. ":" .. i
end
print(table.concat(seen, " "))

-- math.type of loop variables.
for i = 1, 2 do io.write(math.type(i), " ") end
for i = 1, 2, 1.0 do io.write(math.type(i), " ") end
for i = 1.0, 2 do io.write(math.type(i), " ") end
print()
