-- mobility-check: every=0,1,7,100 strict
-- Tables keep their exact layout across moves: the border # finds in a
-- table with holes depends on how its array and hash parts are sized, and
-- next() over integer keys must go on where it was.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local function borders(t, label)
  move()
  print(label, #t, rawlen(t))
end

local t1 = { 1, 2, nil, 4 }
borders(t1, "constructor with hole")
local t2 = {}
for i = 1, 10 do t2[i] = i end
t2[5] = nil
borders(t2, "hole at 5")
t2[10] = nil
t2[9] = nil
borders(t2, "trailing holes")
local t3 = {}
t3[1] = 1; t3[2] = 2; t3[4] = 4; t3[8] = 8; t3[16] = 16
borders(t3, "powers of two")
local t4 = { n = 1, 1, 2, 3, [5] = 5, [6] = 6 }
borders(t4, "mixed constructor")
local t5 = {}
for i = 1, 100 do t5[i] = i end
for i = 1, 100, 3 do t5[i] = nil end
borders(t5, "every third removed")
local t6 = table.pack(1, nil, nil, 4)
borders(t6, "packed")
t6[5] = 5
borders(t6, "packed grown")

-- Integer keys in the hash part, visited with next across moves.
local sparse = {}
for i = 1, 50 do sparse[i * 7] = i end
local count, sum = 0, 0
for k, v in pairs(sparse) do
  count = count + 1
  sum = sum + k * v
  if count % 5 == 0 then move() end
end
print("sparse", count, sum)

-- A table that grows after a move keeps its earlier entries.
local grow = { 1, 2, 3 }
move()
for i = 4, 40 do grow[i] = i end
grow.x = "x"
move()
local ok = true
for i = 1, 40 do ok = ok and grow[i] == i end
print("grown", #grow, ok, grow.x)

-- table.remove and table.insert on a table restored with holes.
local h = { 1, 2, 3, 4, 5, 6 }
h[3] = nil
move()
print(#h == 6 or #h == 2, pcall(table.insert, h, 7))
