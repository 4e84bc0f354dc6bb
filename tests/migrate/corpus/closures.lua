-- mobility-check: every=0,13,100,1000 strict
-- Closures, shared upvalues, per-iteration loop variables, self-recursive
-- locals, closures returning closures, all across moves.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local function counter(start)
  local n = start
  local function inc(d) n = n + (d or 1); return n end
  local function get() return n end
  return inc, get
end

local inc, get = counter(10)
inc()
move()
inc(5)
print("counter", get())
move()
print("counter again", inc(), get())

-- Two closures sharing one upvalue, and a closure over a closed upvalue.
local shared = {}
do
  local v = 0
  shared.set = function(x) v = x end
  shared.get = function() return v end
end
shared.set(42)
move()
print("shared", shared.get())
shared.set("changed")
move()
print("shared", shared.get())

-- Each loop iteration has its own variable.
local fs = {}
for i = 1, 5 do
  fs[i] = function() return i * i end
  if i == 3 then move() end
end
local parts = {}
for i = 1, 5 do parts[#parts + 1] = fs[i]() end
print("squares", table.concat(parts, " "))

-- Recursive local function and mutual recursion through upvalues.
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local is_even, is_odd
function is_even(n) if n == 0 then return true end return is_odd(n - 1) end
function is_odd(n) if n == 0 then return false end return is_even(n - 1) end
move()
print("fib", fib(15), is_even(10), is_odd(7))

-- Closures built by closures, several levels of upvalues.
local function adder(a)
  return function(b)
    return function(c)
      move()
      return a + b + c
    end
  end
end
print("adder", adder(1)(20)(300))

-- An open upvalue (the variable is still live on the stack) across a move.
local function open_upvalue()
  local x = 1
  local function bump() x = x * 2 end
  for _ = 1, 5 do bump(); move() end
  return x
end
print("open upvalue", open_upvalue())

-- Memoizing closure with a table upvalue.
local function memo(f)
  local cache = {}
  return function(k)
    local v = cache[k]
    if v == nil then v = f(k); cache[k] = v end
    return v
  end
end
local calls = 0
local sq = memo(function(k) calls = calls + 1; return k * k end)
for i = 1, 10 do sq(i % 4) end
move()
print("memo", sq(3), calls)
