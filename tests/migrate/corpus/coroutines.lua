-- mobility-check: every=0,7,100,1000 strict
-- Coroutines created by the script: resume/yield values, status, wrap,
-- close, isyieldable, running; the main coroutine moves while they are
-- suspended in the middle of their bodies.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local co = coroutine.create(function(a, b)
  print("started with", a, b)
  local c = coroutine.yield(a + b)
  print("got", c)
  local d, e = coroutine.yield(c * 2, "two")
  print("got", d, e)
  return "done", a + b + c + d
end)
print(coroutine.status(co))
print(coroutine.resume(co, 1, 2))
move()
print(coroutine.status(co))
print(coroutine.resume(co, 10))
move()
print(coroutine.resume(co, 100, "e"))
print(coroutine.status(co), coroutine.resume(co))

-- A coroutine that keeps locals and upvalues across many resumes and moves.
local function accumulator()
  local total = 0
  return coroutine.create(function(x)
    while true do
      total = total + x
      x = coroutine.yield(total)
    end
  end)
end
local acc = accumulator()
local last
for i = 1, 20 do
  last = select(2, coroutine.resume(acc, i))
  if i % 5 == 0 then move() end
end
print("accumulated", last, coroutine.status(acc))

-- Status seen from inside, running, isyieldable.
local inner
inner = coroutine.create(function()
  print("inside status", coroutine.status(inner), coroutine.isyieldable(), coroutine.running() == inner)
  coroutine.yield()
end)
coroutine.resume(inner)
move()
print("outside status", coroutine.status(inner))

-- A coroutine resuming another: the outer one is "normal" meanwhile.
local outer
local nested = coroutine.create(function()
  print("outer is", coroutine.status(outer))
  coroutine.yield("from nested")
  return "nested done"
end)
outer = coroutine.create(function()
  local ok, v = coroutine.resume(nested)
  coroutine.yield(v)
  ok, v = coroutine.resume(nested)
  return v
end)
print(coroutine.resume(outer))
move()
print(coroutine.resume(outer))
print(coroutine.status(outer), coroutine.status(nested))

-- coroutine.close on a suspended coroutine with a pending to-be-closed variable.
local closable = coroutine.create(function()
  local r <close> = setmetatable({}, { __close = function() print("closing pending variable") end })
  coroutine.yield(1)
  print("never reached")
end)
print(coroutine.resume(closable))
move()
print(coroutine.close(closable), coroutine.status(closable))

-- Resuming dead coroutines and non-suspended ones.
print(coroutine.resume(co))
print(coroutine.resume(coroutine.running()))
local wrapped = coroutine.wrap(function() return 1 end)
wrapped()
print(pcall(wrapped))

-- Many live coroutines at once.
local pool = {}
for i = 1, 50 do
  pool[i] = coroutine.create(function(n)
    for k = 1, 3 do n = n + coroutine.yield(n * k) end
    return n
  end)
  coroutine.resume(pool[i], i)
end
move()
local sum = 0
for round = 1, 3 do
  for i = 1, 50 do
    local ok, v = coroutine.resume(pool[i], round)
    sum = sum + v
  end
  move()
end
print("pool sum", sum)

-- Yield across a pcall inside a coroutine, with moves while suspended there.
local guarded = coroutine.create(function()
  local ok, err = pcall(function()
    local v = coroutine.yield("in pcall")
    error({ code = v })
  end)
  coroutine.yield(ok, type(err), err.code)
  return "after"
end)
print(coroutine.resume(guarded))
move()
print(coroutine.resume(guarded, 42))
move()
print(coroutine.resume(guarded))
