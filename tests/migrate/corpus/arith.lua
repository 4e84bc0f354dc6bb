-- mobility-check: every=0,13,100,1000 strict
-- Integer and float arithmetic edge cases, conversions and bitwise ops.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local maxi, mini = math.maxinteger, math.mininteger
print(maxi + 1 == mini, mini - 1 == maxi, maxi * 2, -mini == mini, mini // -1, mini % -1)
print(7 // 2, -7 // 2, 7 // -2, -7 // -2, 7 % 3, -7 % 3, 7 % -3, -7 % -3)
print(7.5 // 2, -7.5 // 2, 7.5 % 2, -7.5 % 2, 5.3 % -2, 1e308 * 10, -1e308 * 10)
print(1 / 0, -1 / 0, 0 / 0 ~= 0 / 0, 3 // 0.0, -3 // 0.0, 3 % math.huge, -3 % math.huge)
move()
print(pcall(function() return 1 // 0 end), pcall(function() return 1 % 0 end))
print(3 / 2, 4 / 2, math.type(4 / 2), 2 ^ 2, math.type(2 ^ 2), 10 // 3.0)
print(math.tointeger(3.0), math.tointeger(3.5), math.tointeger("8"), math.tointeger(2 ^ 63))
print(math.ult(1, -1), math.ult(-1, 1), math.abs(mini), math.abs(-0.0), math.abs(-3))
print(math.fmod(7, 3), math.fmod(-7, 3), math.fmod(7, -3), math.fmod(7.5, 2), pcall(math.fmod, 1, 0))
print(math.fmod(mini, -1), math.fmod(1, 0.0) ~= math.fmod(1, 0.0))
move()
print(math.floor(3.7), math.floor(-3.7), math.ceil(3.2), math.ceil(-3.2), math.floor(2 ^ 70))
print(math.max(1, 2.5, -1), math.min(3, 1.0, 2), math.max(mini, maxi), math.type(math.max(1, 2)))
print(math.sqrt(16), math.exp(0), math.log(1), math.log(8, 2), math.log(100, 10), math.log(27, 3))
print(math.sin(0), math.cos(0), math.huge, -math.huge, math.pi)
print(string.format("%.10f %.10f %.10f", math.atan(1, 1), math.atan(1), math.asin(1)))
move()
-- Comparisons between integers and floats are exact.
print(maxi < 2 ^ 63, maxi + 0.0 == 2 ^ 63, maxi == 2 ^ 63, mini == -2 ^ 63, 2 ^ 53 == 2 ^ 53 + 1)
print(1 == 1.0, math.type(1), math.type(1.0), math.type("1"), 0.0 == -0.0, 1 < 1.5, -1 > -1.5)
-- String coercions.
print("10" + 1, "10" * "2", "3.5" + 1, "0x10" + 0, 10 .. "", -"2", "1e1" * 1)
print(pcall(function() return "abc" + 1 end))
print(math.type("10" + 1), math.type("10.0" + 1), math.type("1e1" + 0))
-- Bitwise operators, with floats that are integral and strings.
print(5 & 3, 5 | 3, 5 ~ 3, ~5, 1 << 62, 1 << 63, 1 << 64, -1 >> 1, -1 >> 63, 3 << -1)
print(2.0 & 3, pcall(function() return "6" | 1 end))
print(pcall(function() return 1.5 & 1 end))
print(pcall(function() return "1.5" | 0 end))
move()
-- Integer overflow wraps; conversion of big floats fails.
local acc = 1
for i = 1, 70 do acc = acc * 3 end
print(acc, 3 ^ 70)
print(pcall(string.rep, "x", 2 ^ 63))
print(string.format("%.0f", 2 ^ 63), math.tointeger(-2 ^ 63))
-- Accumulate a float sum across moves.
local s = 0.0
for i = 1, 1000 do
  s = s + 1 / i
  if i % 250 == 0 then move() end
end
print(string.format("%.15f", s), s)
-- Integer division and modulo identities over a range.
local bad = 0
for a = -20, 20 do
  for b = -7, 7 do
    if b ~= 0 and a ~= (a // b) * b + a % b then bad = bad + 1 end
  end
end
print("identity failures", bad)
print(tostring(1e15), tostring(-1e15), tostring(123456.789e3), 2^24, 0x7fffffffffffffff, 0xffffffffffffffff)
print(0x10p4, 0x.8, 1e2, .5, 3., 0xA.8p0)
