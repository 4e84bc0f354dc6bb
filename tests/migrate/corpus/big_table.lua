-- mobility-check: every=0,3000000 strict
-- A table with a million entries (array and hash parts) moves intact.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local N = 1000000
local t = {}
for i = 1, N do t[i] = i * 2 end
move()
local h = {}
for i = 1, 100000 do h["k" .. i] = i end
move()
local sum = 0
for i = 1, N do sum = sum + t[i] end
local hsum, hn = 0, 0
for k, v in pairs(h) do hsum = hsum + v; hn = hn + 1 end
print("array", #t, sum, t[1], t[N])
print("hash", hn, hsum, h.k1, h.k100000)
t[N + 1] = "tail"
move()
print(#t, t[N + 1], h.k54321)
