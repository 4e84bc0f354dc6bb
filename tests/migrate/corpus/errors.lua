-- mobility-check: every=0,1,7,100,1000 strict
-- pcall/xpcall/error with string and non-string error values (tables, nil,
-- numbers, booleans, functions), levels, handlers, errors crossing
-- coroutine boundaries; moves inside protected calls.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

print(pcall(error, "plain"))
print(pcall(error, "plain", 0))
print(pcall(function() error("with position") end))
print(pcall(function() error("level 2", 2) end))
print(pcall(function() move(); error() end))
print(pcall(error, nil))
print(pcall(error, 42))
print(pcall(error, false))
local etab = { code = 7 }
local ok, e = pcall(function() move(); error(etab) end)
print(ok, e == etab, e.code)
local ok2, e2 = pcall(error, setmetatable({}, { __tostring = function() return "custom" end }))
print(ok2, tostring(e2))

-- Runtime errors and their messages.
print(pcall(function() local t = nil; return t.x end))
print(pcall(function() return 1 + {} end))
print(pcall(function() return #5 end))
print(pcall(function() return ("x")() end))
print(pcall(function() local a = "abc" < 1 end))
print(pcall(function() return 1 // 0 end))
print(pcall(function() return 1 % 0 end))
print(pcall(string.rep))
print(pcall(setmetatable, 1, {}))

-- xpcall with handlers; the handler sees the original value.
print(xpcall(function() error("h1") end, function(m) return "handled: " .. m end))
print(xpcall(function() error({ 1, 2, 3 }) end, function(m) return #m end))
print(xpcall(function() error() end, function(m) return type(m) end))
print(xpcall(function(a, b) move(); return a + b end, print, 3, 4))
print(xpcall(function() move(); error("after move") end, function(m) move(); return "h: " .. m end))
-- An error inside the handler.
print(xpcall(function() error("first") end, function(m) error("second") end))

-- Nested protected calls, the inner error stays inside.
print(pcall(function()
  local ok3, err3 = pcall(function() move(); error("inner") end)
  move()
  return "outer fine", ok3, err3
end))

-- Errors crossing coroutine boundaries.
local co = coroutine.create(function() move(); error({ from = "coroutine" }) end)
local okc, errc = coroutine.resume(co)
print(okc, type(errc), errc.from, coroutine.status(co))
local wrapped = coroutine.wrap(function() coroutine.yield(1); error("wrapped failure") end)
wrapped()
move()
print(pcall(wrapped))
local wt = coroutine.wrap(function() error({ obj = true }) end)
local okw, errw = pcall(wt)
print(okw, type(errw), errw.obj)
-- An error value travelling: created in a coroutine, caught in main, rethrown.
local carrier = coroutine.create(function() local v = {}; v.self = v; error(v) end)
local _, cv = coroutine.resume(carrier)
move()
local okr, rv = pcall(error, cv)
print(okr, rv == cv, rv.self == cv)

-- error with levels pointing at callers.
local function check(x) if type(x) ~= "number" then error("expected number", 2) end return x end
local function caller() return check("no") end
print(pcall(caller))
-- tostring(nil) errors and assert.
print(pcall(assert, false))
print(pcall(assert, nil, "assert message"))
print(pcall(assert, 1 == 1, "unused"))
print(select("#", pcall(assert, 1, 2, 3)))
local okt, et = pcall(assert, false, { "table message" })
print(okt, type(et), et[1])
