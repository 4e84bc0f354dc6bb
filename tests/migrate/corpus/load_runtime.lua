-- mobility-check: every=0,1,7,100,1000 strict
-- Functions compiled at run time by load survive moves (the engine records
-- their source), keep their chunk names in error messages, and see the
-- environment they were given.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local make = load("local base = ... return function(x) return base + x end")
local add10 = make(10)
move()
print("add10", add10(5))

local f = load("return 1 + 1")
move()
print("simple", f())

-- Named chunks and their error positions.
local named = load("local a = ...\nif a then error('named failure') end\nreturn 'fine'", "=mychunk")
move()
print(named(), pcall(named, true))
local strchunk = load("error('default chunk name')")
move()
print(pcall(strchunk))
local longchunk = load(string.rep(" ", 10) .. "return debug.getinfo(1, 'S').short_src\n-- " .. string.rep("x", 80))
print(longchunk())

-- A custom environment.
local env = { value = 7 }
local fenv = load("value = value * 6; return value", "=env chunk", "t", env)
move()
print(fenv(), env.value, value)

-- Globals written by loaded code are the script's globals.
load("shared_global = 'from load'")()
move()
print(shared_global)
shared_global = "changed by main"
print(load("return shared_global")())

-- A loader function delivering pieces.
local pieces = { "local t = {} ", "for i = 1, 5 do t[i] = i * i end ", "return table.concat(t, ',')" }
local i = 0
local pieced = load(function() i = i + 1; return pieces[i] end, "=pieces")
move()
print("pieces", pieced())

-- Loaded code that defines closures and coroutines, suspended across moves.
local gen = load([[
  local n = ...
  return coroutine.wrap(function()
    for k = 1, n do coroutine.yield(k * 100) end
  end)
]])(4)
print(gen())
move()
print(gen(), gen())
move()
print(gen())

-- Nested load: loaded code loading more code.
local nest = load("return load('return load(\"return 3 * 14\")')")
move()
print("nested", nest()()())

-- The same source text loaded twice gives distinct functions.
local src = "local c = 0 return function() c = c + 1 return c end"
local c1, c2 = load(src)(), load(src)()
c1(); c1()
move()
print("distinct", c1(), c2())

-- Syntax errors are reported, not raised.
print(load("return +"))
print(load("x ="))
print(pcall(load, 42))
