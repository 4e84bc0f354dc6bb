-- mobility-check: every=0,1,5,31,100 strict
-- Small states holding one of everything (the state-restore fuzzer's seed
-- states are dumped from this script, which it registers as its source):
-- nested coroutines, wrap generators, closures with shared upvalues,
-- to-be-closed variables, pcall frames, loaded chunks, metatables with
-- finalizers, weak tables, integer/float/string keys, a pairs loop.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local shared = 0
local function bump(d) shared = shared + d; return shared end
local mt = { __index = function(_, k) return "idx:" .. tostring(k) end,
             __gc = function() end, __name = "mixed" }
local obj = setmetatable({ 1, 2.5, "three", [-1] = true, [0.5] = false, key = "v" }, mt)
local weak = setmetatable({ [obj] = "weak key" }, { __mode = "k" })
local loaded = load("local a = ... return function(b) return a * b end", "=mix")(6)
local gen = coroutine.wrap(function()
  for i = 1, 3 do coroutine.yield(i) end
end)
local inner = coroutine.create(function(x)
  local ok, v = pcall(function()
    local r <close> = setmetatable({}, { __close = function() bump(100) end })
    return coroutine.yield(x + 1)
  end)
  coroutine.yield(ok, v)
  return "inner done"
end)

print(bump(1), obj[4], weak[obj], loaded(7), gen())
move()
print(coroutine.resume(inner, 41))
move()
print(coroutine.resume(inner, "back"))
move()
print(gen(), gen(), bump(2))
local seen = 0
for k in pairs(obj) do seen = seen + 1; move() end
print("keys", seen, coroutine.resume(inner), coroutine.status(inner))
local s = 0
for i = 1, 20 do s = s + i * 0.5; if i % 10 == 0 then move() end end
print("sum", s, shared, math.type(s), utf8.char(8364))
