-- mobility-check: every=0,13,100,1000 strict
-- Identity survives moves: aliases, cycles, tables/functions/coroutines as
-- keys, the same closure reached along several paths.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local t = {}
local alias = t
local nested = { t, t, inner = { t } }
t.self = t
t.list = nested
move()
print(alias == t, nested[1] == nested[2], nested.inner[1] == t, t.self.self == t, t.list == nested)

local f = function() return "f" end
local byf = { [f] = "function key" }
local co = coroutine.create(function() end)
local byco = { [co] = "thread key" }
local key = {}
local byt = { [key] = "table key" }
move()
print(byf[f], byco[co], byt[key], byt[{}])

-- Two closures sharing an upvalue table, reached through different tables.
local state = { n = 0 }
local api = { inc = function() state.n = state.n + 1 end, get = function() return state.n end }
local registry = { api.inc, { deeper = api.get } }
registry[1]()
move()
registry[1]()
api.inc()
print(api.get(), registry[2].deeper(), state.n)

-- A long ring of tables.
local first = { id = 1 }
local cur = first
for i = 2, 500 do cur.next = { id = i }; cur = cur.next end
cur.next = first
move()
local steps, p = 0, first
repeat steps = steps + 1; p = p.next until p == first
print("ring", steps, cur.next == first)

-- Metatables shared by many objects.
local mt = { __index = function(_, k) return k .. "?" end }
local objs = {}
for i = 1, 20 do objs[i] = setmetatable({}, mt) end
move()
local same = true
for i = 2, 20 do same = same and getmetatable(objs[i]) == getmetatable(objs[1]) end
print("shared metatable", same, objs[5].x, getmetatable(objs[1]) == mt)

-- Strings as keys and values keep their equality (and raw equality).
local s1 = "abc" .. "def"
local ks = { [s1] = 1 }
move()
print(ks["abcdef"], rawequal(s1, "abcdef"))

-- Numbers keep their type: integer vs float keys and values.
local nums = { [1] = "int", [2.5] = "float", [2^53] = "big float" }
local vals = { 1, 1.0, -0.0, 0.1, math.maxinteger, math.mininteger, 1 / 0, -1 / 0 }
move()
print(nums[1], nums[1.0], nums[2.5], nums[2^53], math.type(next({ [3.0] = 1 })))
local out = {}
for i, v in ipairs(vals) do out[i] = math.type(v) .. ":" .. tostring(v) end
print(table.concat(out, " "))
local nan = 0 / 0
local withnan = { nan }
move()
print(withnan[1] ~= withnan[1], math.type(withnan[1]))
