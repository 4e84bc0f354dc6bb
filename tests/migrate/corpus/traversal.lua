-- mobility-check: every=0,31,100,1000 strict
-- next/pairs traversals in flight when the script moves: every key must be
-- visited exactly once (the order itself depends on the hash seed, so only
-- the invariant and sorted keys are printed).
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local function check(t, name, mutate)
  local seen, count, dup = {}, 0, 0
  for k, v in pairs(t) do
    if seen[k] then dup = dup + 1 end
    seen[k] = true
    count = count + 1
    if count % 3 == 0 then move() end
    if mutate then t[k] = v * 2 end
  end
  local expected, missing = 0, 0
  for k in next, t do expected = expected + 1; if not seen[k] then missing = missing + 1 end end
  print(name, "visited", count, "of", expected, "duplicates", dup, "missing", missing)
end

local t = {}
for i = 1, 200 do t["key" .. i] = i end
check(t, "strings")

local mixed = { 1, 2, 3, 4, 5 }
for i = 1, 40 do mixed["s" .. i] = i; mixed[i * 1.5] = i; mixed[-i] = i end
mixed[true] = 1
mixed[false] = 2
check(mixed, "mixed")

-- Assigning to existing fields during the traversal is allowed.
local m = {}
for i = 1, 100 do m["m" .. i] = i end
check(m, "mutating", true)
local total = 0
for _, v in pairs(m) do total = total + v end
print("doubled sum", total)

-- Clearing fields during the traversal is allowed too.
local c = {}
for i = 1, 100 do c["c" .. i] = i end
local visited = 0
for k in pairs(c) do
  visited = visited + 1
  c[k] = nil
  if visited % 7 == 0 then move() end
end
print("cleared", visited, next(c))

-- A manual next loop held across moves.
local n = {}
for i = 1, 64 do n[("%02d"):format(i)] = i end
local k, v = next(n)
local keys = {}
while k do
  keys[#keys + 1] = k
  move()
  k, v = next(n, k)
end
table.sort(keys)
print("manual", #keys, keys[1], keys[#keys])

-- Tables used as keys, traversed across moves.
local objs = {}
for i = 1, 30 do objs[{ id = i }] = i end
local sum = 0
local cnt = 0
for key, val in pairs(objs) do
  sum = sum + key.id * val
  cnt = cnt + 1
  if cnt % 4 == 0 then move() end
end
print("table keys", cnt, sum)
