-- mobility-check: every=0,5,100 strict
-- Moves from inside the places Lua 5.4 lets a coroutine yield from the
-- middle of an operation: a __close handler running at block exit, a
-- __concat over several operands, a generic-for iterator, an __index chain,
-- a __call, a comparison chain, a __newindex inside a table constructor.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

-- __close handlers that move, at normal exit, break, return and error.
local log = {}
local function closer(name)
  return setmetatable({}, { __close = function(_, e)
    move()
    log[#log + 1] = name .. (e and ":" .. tostring(e) or "")
    move()
  end })
end
do
  local a <close> = closer("a")
  local b <close> = closer("b")
end
for i = 1, 3 do
  local c <close> = closer("loop" .. i)
  if i == 2 then break end
end
local function f()
  local d <close> = closer("ret")
  return "value"
end
print(f())
print(pcall(function()
  local e <close> = closer("err")
  error("E", 0)
end))
print(table.concat(log, " "))

-- __concat over four operands, the metamethod moving each time.
local C = setmetatable({}, { __concat = function(x, y)
  move()
  local function s(v) return type(v) == "table" and "C" or tostring(v) end
  return s(x) .. s(y)
end })
print("a" .. C .. "b" .. C, C .. 1 .. 2 .. C)

-- An iterator function that moves on every call.
local function iter(n)
  local i = 0
  return function()
    move()
    i = i + 1
    if i <= n then return i, i * i end
  end
end
local s = {}
for i, sq in iter(5) do s[#s + 1] = i .. "=" .. sq end
print(table.concat(s, " "))

-- __index chain of functions, each moving.
local base = setmetatable({}, { __index = function(_, k) move(); return "base:" .. k end })
local mid = setmetatable({}, { __index = function(_, k) move(); return base[k] .. "+mid" end })
print(mid.x, mid.y)

-- __call with varargs, moving between returns.
local callable = setmetatable({}, { __call = function(self, ...)
  move()
  return select("#", ...), ...
end })
print(callable(1, nil, 3))

-- Comparisons in a chain, each __lt/__le moving.
local N = {}
N.__lt = function(a, b) move(); return a.v < b.v end
N.__le = function(a, b) move(); return a.v <= b.v end
local function n(v) return setmetatable({ v = v }, N) end
print(n(1) < n(2) and n(2) <= n(2) and not (n(3) < n(1)), n(5) > n(4), n(4) >= n(5))

-- __newindex moving while a loop fills a proxy.
local store = {}
local proxy = setmetatable({}, { __newindex = function(_, k, v) move(); store[k] = v * 10 end })
for i = 1, 5 do proxy[i] = i end
print(table.concat(store, ","))

-- __eq moving, inside an if condition inside a while loop.
local E = { __eq = function(a, b) move(); return a.k == b.k end }
local items = {}
for i = 1, 4 do items[i] = setmetatable({ k = i % 2 }, E) end
local i, same = 1, 0
while i < #items do
  if items[i] == items[i + 1] then same = same + 1 end
  i = i + 1
end
print("equal neighbours", same, items[1] == items[3])
