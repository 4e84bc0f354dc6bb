-- mobility-check: every=0,1,100,1000 strict
-- Metamethods of every kind; moves happen inside several of them (Lua 5.4
-- lets a metamethod called from Lua code yield).
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local V = {}
V.__index = V
local function vec(x, y) return setmetatable({ x = x, y = y }, V) end
V.__add = function(a, b) move(); return vec(a.x + b.x, a.y + b.y) end
V.__sub = function(a, b) return vec(a.x - b.x, a.y - b.y) end
V.__mul = function(a, b)
  if type(a) == "number" then return vec(a * b.x, a * b.y) end
  if type(b) == "number" then return vec(a.x * b, a.y * b) end
  return a.x * b.x + a.y * b.y
end
V.__div = function(a, k) return vec(a.x / k, a.y / k) end
V.__mod = function(a, k) return vec(a.x % k, a.y % k) end
V.__pow = function(a, k) return vec(a.x ^ k, a.y ^ k) end
V.__idiv = function(a, k) return vec(a.x // k, a.y // k) end
V.__unm = function(a) return vec(-a.x, -a.y) end
V.__band = function(a, b) return vec(a.x & b.x, a.y & b.y) end
V.__bor = function(a, b) return vec(a.x | b.x, a.y | b.y) end
V.__bxor = function(a, b) return vec(a.x ~ b.x, a.y ~ b.y) end
V.__shl = function(a, n) return vec(a.x << n, a.y << n) end
V.__shr = function(a, n) return vec(a.x >> n, a.y >> n) end
V.__bnot = function(a) return vec(~a.x, ~a.y) end
V.__eq = function(a, b) move(); return a.x == b.x and a.y == b.y end
V.__lt = function(a, b) move(); return a.x * a.x + a.y * a.y < b.x * b.x + b.y * b.y end
V.__le = function(a, b) return not (b < a) end
V.__len = function(a) move(); return 2 end
V.__concat = function(a, b)
  move()
  local function s(v) return type(v) == "table" and v:str() or tostring(v) end
  return s(a) .. s(b)
end
V.__tostring = function(a) return "vec(" .. a.x .. "," .. a.y .. ")" end
V.__name = "vec"
V.__call = function(self, k) move(); return self.x * k, self.y * k end
function V:str() return tostring(self) end

local a, b = vec(1, 2), vec(3, 4)
print(tostring(a + b), tostring(a - b), a * b, tostring(2 * a), tostring(a * 3))
print(tostring(b / 2), tostring(b % 2), tostring(a ^ 2), tostring(b // 2), tostring(-a))
print(tostring(vec(12, 10) & vec(10, 6)), tostring(vec(12, 10) | vec(1, 1)), tostring(vec(12, 10) ~ vec(15, 15)))
print(tostring(a << 2), tostring(vec(16, 8) >> 2), tostring(~vec(0, 1)))
print(a == vec(1, 2), a ~= b, a < b, b < a, a <= b, b <= a, a <= vec(1, 2))
print(#a, a .. b, "a=" .. a, a .. "!", 1 .. a)
print(a(10))

-- __index and __newindex as functions and tables; rawget/rawset bypass them.
local log = {}
local base = { inherited = "from base" }
local obj = setmetatable({}, {
  __index = function(t, k) move(); log[#log + 1] = "get " .. tostring(k); return base[k] end,
  __newindex = function(t, k, v) move(); log[#log + 1] = "set " .. tostring(k); rawset(t, k, v) end,
})
print(obj.inherited, obj.missing)
obj.new = 5
obj.new = 6
print(obj.new, rawget(obj, "inherited"), table.concat(log, "; "))

-- Chains of __index tables.
local A = { a = 1 }
local B = setmetatable({ b = 2 }, { __index = A })
local C = setmetatable({ c = 3 }, { __index = B })
move()
print(C.a, C.b, C.c, C.d)

-- __close and __gc.
do
  local x <close> = setmetatable({}, { __close = function(_, e) print("closed x", e) end })
  move()
  print("in block")
end
local gc_log = {}
do
  local g = setmetatable({}, { __gc = function() gc_log[#gc_log + 1] = "gc ran" end })
  g = nil
end
collectgarbage()
collectgarbage()
print("gc", table.concat(gc_log, ","))

-- __eq is not called for the same object or different types.
local eqcalls = 0
local E = { __eq = function() eqcalls = eqcalls + 1; return true end }
local e1, e2 = setmetatable({}, E), setmetatable({}, E)
print(e1 == e2, e1 == e1, e1 == 1, eqcalls)

-- __lt for mixed comparisons raising errors.
print(pcall(function() return {} < {} end))
print(select(2, pcall(function() return a < 1 end)) ~= nil)

-- __metatable protects the metatable.
local locked = setmetatable({}, { __metatable = "locked" })
print(getmetatable(locked), pcall(setmetatable, locked, {}))

-- Metamethods on strings through the string metatable.
print(("abc"):upper(), #"abc", getmetatable("").__index == string)
print("10" + 5, "3" * "4", 10 .. 20)
