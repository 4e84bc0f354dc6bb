-- mobility-check: every=0,1,7,100 strict
-- string.format of every kind, with moves between the calls.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local F = string.format
print(F("%d %5d %-5d| %05d %+d %i", 42, 42, 42, 42, 42, -7))
print(F("%x %X %#x %o %#o %08x", 255, 255, 255, 8, 8, 3735928559))
print(F("%x", -1), F("%d", math.mininteger), F("%d", math.maxinteger))
move()
print(F("%f %.2f %10.3f %-10.1f| %e %.3E", 3.14159, 3.14159, 3.14159, 3.14159, 12345.678, 0.00012))
print(F("%g %g %g %g %.3g %G", 100000, 1e20, 0.0001, 1e-5, 2 / 3, 1e-10))
print(F("%a %A", 1.0, 0.5), F("%.3a", math.pi))
print(F("%5.1f|%-8.3e|%+.0f", 2.25, 1234.5, 2.5))
move()
print(F("%s %10s %-10s| %.2s", "str", "right", "left", "truncate"))
print(F("%s %s %s %s", nil, true, 12, 1.5))
print(F("%s", setmetatable({}, { __tostring = function() return "tostring used" end })))
print(F("%c%c%c", 76, 117, 97))
print(F("100%% sure"))
move()
print(F("%q", 'he said "hi"\n\tand\0left\r\\'))
print(F("%q", 1 / 3), F("%q", 42), F("%q", math.mininteger), F("%q", 1e100))
print(F("%q", 1 / 0), F("%q", -1 / 0), F("%q", 0 / 0 ~= 0 / 0))
print(F("%q", "\200\201 high bytes"))
print(F("%5s|%-5s|", "toolongvalue", "x"))
print(F("%.0f %.0f %.0f", 0.5, 1.5, 2.5))
print(F("%.14g %.17g", 0.1, 0.1))
print(F("%d", 3.0), pcall(F, "%d", 3.5))
print(pcall(F, "%z", 1))
print(pcall(F, "%d"))
print(pcall(F, "%10.100f", 1))
move()
-- Long format results and many arguments.
local args = {}
for i = 1, 30 do args[i] = i end
print(F(string.rep("%d,", 30), table.unpack(args)))
print(#F("%099d", 7), #F("%s", string.rep("x", 1000)))
-- tostring of numbers, as print does them.
print(1e15, 1e16, 123456789012, 0.1, -0.0, 1/0, -1/0, 2^53, 2^63, -2^63, 100 // 1.0)
print(math.pi, -math.pi, 1e-300, 5e-324, 1.7976931348623157e308)
