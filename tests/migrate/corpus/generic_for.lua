-- mobility-check: every=0,1,7,100,1000 strict
-- Generic for: stateful closure iterators, stateless iterators, ipairs,
-- pairs over sequences, __pairs, iterators that are coroutines.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local function range(n, step)
  local i = 0
  return function()
    i = i + (step or 1)
    if i <= n then return i end
  end
end
local out = {}
for v in range(20, 3) do out[#out + 1] = v; move() end
print("range", table.concat(out, ","))

-- Stateless iterator with explicit state and control values.
local function iter(t, i)
  i = i + 1
  local v = t[i]
  if v ~= nil then return i, v end
end
local letters = { "a", "b", "c", "d" }
for i, v in iter, letters, 0 do io.write(i, "=", v, " "); move() end
print()

for i, v in ipairs({ 10, 20, 30, nil, 50 }) do io.write(i, ":", v, " "); move() end
print()

-- ipairs respects __index.
local proxy = setmetatable({}, { __index = function(_, k) if k <= 4 then return k * 11 end end })
for i, v in ipairs(proxy) do io.write(i, "->", v, " ") end
print()

-- pairs over a pure sequence visits 1..n in order.
local seq = {}
for i = 1, 12 do seq[i] = i * i end
local keys = {}
for k, v in pairs(seq) do keys[#keys + 1] = k .. "=" .. v; if k % 4 == 0 then move() end end
print("pairs seq", table.concat(keys, " "))

-- __pairs.
local ordered = setmetatable({ names = { "x", "y", "z" } }, {
  __pairs = function(t)
    local i = 0
    return function()
      i = i + 1
      local n = t.names[i]
      if n then return i, n end
    end, t, nil
  end,
})
for k, v in pairs(ordered) do io.write(k, v, " "); move() end
print()

-- A generator written as a coroutine, consumed by a for loop.
local function gen(n)
  return coroutine.wrap(function()
    for i = 1, n do coroutine.yield(i, i * i) end
  end)
end
local acc = {}
for a, b in gen(6) do acc[#acc + 1] = a .. "^2=" .. b; move() end
print("gen", table.concat(acc, " "))

-- Iterator with a closing value (the 4th value of the generic for).
local closed = {}
local function closing_iter(n)
  local i = 0
  local closer = setmetatable({}, { __close = function() closed[#closed + 1] = "closed" .. n end })
  return function() i = i + 1; if i <= n then return i end end, nil, nil, closer
end
for i in closing_iter(3) do move() end
for i in closing_iter(5) do if i == 2 then break end end
print("closing", table.concat(closed, " "))

-- Nested iterations over the same stateful iterator source.
local pairs_out = {}
for a in range(3) do
  for b in range(a) do
    pairs_out[#pairs_out + 1] = a .. b
    move()
  end
end
print("nested", table.concat(pairs_out, " "))

-- string iteration by index and utf8 by codes, with moves.
local s = "héllo"
local cps = {}
for p, c in utf8.codes(s) do cps[#cps + 1] = p .. ":" .. c; move() end
print("codes", table.concat(cps, " "))
