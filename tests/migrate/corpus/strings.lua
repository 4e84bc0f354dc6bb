-- mobility-check: every=0,1,7,100,1000 strict
-- String methods and patterns: find, match, gsub (string, table and function
-- replacements), gmatch loops with moves inside, frontier and balance.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local s = "The quick brown fox jumps over the lazy dog"
print(s:len(), #s, s:upper(), s:lower())
print(s:sub(5, 9), s:sub(-3), s:sub(-8, -5), s:sub(0), s:sub(100))
print(s:byte(1, 3), string.char(72, 105))
print(s:rep(2, "|"), ("ab"):rep(3), ("x"):rep(0))
print(s:reverse())
print(s:find("quick"), s:find("o", 15), s:find("%s"), s:find(".", 1, true))
print(s:match("(%a+) (%a+)"), s:match("()fox()"))
move()

-- gmatch loops spanning moves.
local words = {}
for w in s:gmatch("%a+") do words[#words + 1] = w:lower(); move() end
print("words", #words, table.concat(words, ","))

local kv = {}
for k, v in ("a=1, b=22, ccc=333"):gmatch("(%w+)=(%w+)") do kv[#kv + 1] = k .. ":" .. v; move() end
print("kv", table.concat(kv, " "))

-- gmatch with an anchor and an init position.
local anchored = {}
for d in ("123abc456"):gmatch("^%d") do anchored[#anchored + 1] = d end
print("anchored", table.concat(anchored, ","))
local from = {}
for w in string.gmatch("one two three four", "%a+", 5) do from[#from + 1] = w; move() end
print("from", table.concat(from, ","))

-- gsub with a string, a table and a function.
print(s:gsub("o", "0"))
print(s:gsub("(%w+) (%w+)", "%2 %1", 2))
print(("$name is $age"):gsub("%$(%w+)", { name = "Ana", age = 7 }))
local n = 0
print(s:gsub("%a+", function(w)
  n = n + 1
  move()
  if #w > 4 then return w:upper() end
end))
print("calls", n)
print(("hello world"):gsub("", "-"))
print(("abc"):gsub("%w", "%0%0"))
print(("x = 1 + 2"):gsub("%s", ""))

-- Frontier, balance, classes, captures of positions.
print(("THE (quick) fox"):find("%f[%a]%a+%f[%A]"))
print(("f(a(b)c) g(d)"):match("%b()"))
print(("key = value"):match("^(%w+)%s*=%s*(%w+)$"))
print(("  trim me  "):match("^%s*(.-)%s*$") .. "|")
print(("2024-01-15"):match("(%d+)-(%d+)-(%d+)"))
print(string.find("a+b", "+", 1, true), string.find("a.b", "%."))
print(pcall(string.rep, "x", -1))
print(pcall(string.find, "x", "[a"))

-- string.format is in format.lua; tostring/tonumber conversions here.
print(tonumber("0x1F"), tonumber("  12  "), tonumber("1e2"), tonumber("z", 36), tonumber("777", 8))
print(tonumber("1e"), tonumber(""), tonumber("0x"), tonumber("10", 2))
print(tostring(12), tostring(12.0), tostring(-0.0), tostring(1e100), tostring(2^63))
print(("%d items"):format(3), ("x"):byte(), ("é"):len())

-- string.pack and unpack with explicit byte order.
local packed = string.pack("<i4 >i2 z s1 d", -2, 513, "zero", "len", 1.5)
move()
print(#packed, string.unpack("<i4 >i2 z s1 d", packed))
print(string.packsize("<i4 i8 !8 d"), string.unpack("B", "\255"))

-- Long strings (not interned) and short ones in tables, across moves.
local long = string.rep("long string ", 20)
local t = { [long] = "by long key", short = long }
move()
print(t[string.rep("long string ", 20)], #t.short, t.short == long)

-- Escapes.
print("tab\tnew\\nline", "\65\066\x43\u{44}\z
       E", #"\0abc")
