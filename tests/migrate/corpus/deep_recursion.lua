-- mobility-check: every=0,3001,9973 strict
-- Deep recursion: 10,000 Lua frames live on the main coroutine's stack when
-- it moves, and 3,000 on a nested coroutine's.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local function down(n, acc)
  if n == 0 then
    move()
    return acc
  end
  local here = n * 2
  local r = down(n - 1, acc + here)
  return r + 0 * here
end
print("down", down(10000, 0))

-- Frames each holding a distinct table; the move happens at the bottom.
local function build(n)
  if n == 0 then move(); return {} end
  local t = build(n - 1)
  t[#t + 1] = n
  return t
end
local t = build(10000)
print("built", #t, t[1], t[10000])

-- Non-tail mutual recursion.
local ping, pong
function ping(n) if n == 0 then move(); return "ping" end local r = pong(n - 1); return r end
function pong(n) if n == 0 then move(); return "pong" end local r = ping(n - 1); return r end
print(ping(10001), pong(10000))

-- Deep stack inside a coroutine suspended at its bottom.
local co = coroutine.create(function()
  local function dig(n) if n == 0 then return coroutine.yield("bottom") end return 1 + dig(n - 1) end
  return dig(3000)
end)
print(coroutine.resume(co))
move()
print(coroutine.resume(co, 0))

-- A long chain of tail calls uses no stack at all.
local function spin(n) if n == 0 then move(); return "tail done" end return spin(n - 1) end
print(spin(50000))
