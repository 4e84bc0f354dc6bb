-- mobility-check: every=0,7,100,1000 strict
-- coroutine.wrap generators several levels deep (a pipeline of generators
-- each pulling from the one below), with moves between pulls.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local function naturals()
  return coroutine.wrap(function()
    local n = 0
    while true do n = n + 1; coroutine.yield(n) end
  end)
end
local function filter(pred, src)
  return coroutine.wrap(function()
    for v in src do if pred(v) then coroutine.yield(v) end end
  end)
end
local function map(f, src)
  return coroutine.wrap(function()
    for v in src do coroutine.yield(f(v)) end
  end)
end
local function take(n, src)
  return coroutine.wrap(function()
    for _ = 1, n do
      local v = src()
      if v == nil then return end
      coroutine.yield(v)
    end
  end)
end

local pipeline = take(12, map(function(v) return v * v end,
  filter(function(v) return v % 3 ~= 0 end, naturals())))
local got = {}
for v in pipeline do got[#got + 1] = v; move() end
print("pipeline", table.concat(got, " "))

-- Sieve of Eratosthenes as a chain of filters, one coroutine per prime.
local function sieve()
  return coroutine.wrap(function()
    local src = coroutine.wrap(function() for i = 2, math.huge do coroutine.yield(i) end end)
    while true do
      local p = src()
      coroutine.yield(p)
      local prev = src
      src = coroutine.wrap(function()
        for v in prev do if v % p ~= 0 then coroutine.yield(v) end end
      end)
    end
  end)
end
local primes = {}
local s = sieve()
for i = 1, 25 do primes[i] = s(); if i % 5 == 0 then move() end end
print("primes", table.concat(primes, " "))

-- Recursive generator: in-order traversal of a tree, one wrap per level.
local function tree(depth, base)
  if depth == 0 then return nil end
  return { v = base, l = tree(depth - 1, base * 2), r = tree(depth - 1, base * 2 + 1) }
end
local function walk(node)
  return coroutine.wrap(function()
    if not node then return end
    for v in walk(node.l) do coroutine.yield(v) end
    coroutine.yield(node.v)
    for v in walk(node.r) do coroutine.yield(v) end
  end)
end
local order = {}
for v in walk(tree(5, 1)) do order[#order + 1] = v; if #order % 7 == 0 then move() end end
print("inorder", table.concat(order, " "))

-- Errors thrown deep in a wrapped chain come out of the outermost call.
local bad = map(function(v) if v == 4 then error("bad value " .. v) end return v end, naturals())
local vals = {}
local ok, err = pcall(function() for v in bad do vals[#vals + 1] = v; move() end end)
print("chain error", ok, err, table.concat(vals, ","))
print("dead wrap", pcall(bad))
