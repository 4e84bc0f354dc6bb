-- mobility-check: every=0,1,7,100,1000 strict
-- To-be-closed variables across moves: normal exit, break, goto, return,
-- errors, nested scopes, inside coroutines, and false/nil values.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local log = {}
local function closer(name)
  return setmetatable({}, { __close = function(_, err)
    log[#log + 1] = name .. (err ~= nil and ("!" .. tostring(err)) or "")
  end })
end
local function flush(tag) print(tag, table.concat(log, " ")); log = {} end

do
  local a <close> = closer("a")
  local b <close> = closer("b")
  move()
  local c <close> = closer("c")
  move()
end
flush("block")

for i = 1, 3 do
  local x <close> = closer("loop" .. i)
  move()
  if i == 2 then break end
end
flush("break")

do
  local outer <close> = closer("outer")
  for i = 1, 2 do
    local inner <close> = closer("inner" .. i)
    if i == 1 then goto next end
    move()
    ::next::
  end
end
flush("goto")

local function ret()
  local r <close> = closer("ret")
  move()
  return "returned"
end
print(ret())
flush("return")

local ok, err = pcall(function()
  local e1 <close> = closer("e1")
  local e2 <close> = closer("e2")
  move()
  error("boom", 0)
end)
print(ok, err)
flush("error")

-- An error inside __close replaces the original one.
ok, err = pcall(function()
  local z <close> = setmetatable({}, { __close = function() error("close failed", 0) end })
  error("original", 0)
end)
print(ok, err)

-- nil and false are allowed and ignored.
do
  local n <close> = nil
  local f <close> = false
  move()
end
print("nil and false fine")

-- A non-closable value is an error at the declaration.
print(pcall(function() local bad <close> = {} end))

-- Constants.
local K <const> = 10
local S <const> = "const"
move()
print(K * 2, S)

-- Inside a coroutine, closed when the coroutine finishes after moves.
local co = coroutine.wrap(function()
  local c1 <close> = closer("co1")
  coroutine.yield("yielded")
  local c2 <close> = closer("co2")
  coroutine.yield("again")
  return "finished"
end)
print(co())
move()
print(co())
move()
print(co())
flush("coroutine")

-- Generic for's closing value on early exit from a function.
local function first_even(t)
  for _, v in function(s, i) i = (i or 0) + 1; if s[i] then return i, s[i] end end, t, nil, closer("iter") do
    move()
    if v % 2 == 0 then return v end
  end
end
print(first_even({ 1, 3, 6, 7 }))
flush("iterator")
