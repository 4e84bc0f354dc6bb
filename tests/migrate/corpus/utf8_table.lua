-- mobility-check: every=0,7,100,1000 strict
-- The utf8 and table libraries, with moves inside their loops (sort's
-- comparator runs inside C, where the count hook cannot move).
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local s = "añb€c𝄞d"
print(#s, utf8.len(s), utf8.char(72, 228, 8364, 119070), utf8.charpattern)
print(utf8.codepoint(s, 1, -1))
print(utf8.offset(s, 3), utf8.offset(s, -1), utf8.offset(s, 0, 3), utf8.len(s, 3), utf8.len("\xff"))
local cps = {}
for pos, cp in utf8.codes(s) do cps[#cps + 1] = pos .. "=" .. cp; move() end
print(table.concat(cps, " "))
local chars = {}
for ch in s:gmatch(utf8.charpattern) do chars[#chars + 1] = ch; move() end
print(#chars, table.concat(chars, "|"))
print(pcall(utf8.codepoint, "\xff"), utf8.len("abc", 4), pcall(utf8.len, "abc", 5))
print(utf8.char(0x7FFFFFFF):byte(1, -1))
print(pcall(function() for _ in utf8.codes("ab\xffcd") do end end))
move()

local t = {}
for i = 1, 10 do table.insert(t, i * 3) end
table.insert(t, 1, "first")
table.insert(t, 5, "fifth")
print(#t, table.concat(t, ","))
print(table.remove(t), table.remove(t, 1), table.remove(t, 4), #t)
print(table.concat(t, ", ", 2, 5), table.concat({}, "x"), table.concat({ 1, 2.5, "s" }))
print(pcall(table.concat, { 1, {}, 3 }))
move()
local moved = table.move({ 1, 2, 3, 4, 5 }, 2, 4, 1)
print(table.concat(moved, ","))
print(table.concat(table.move({ 1, 2, 3 }, 1, 3, 3, { "a", "b" }), ","))
print(table.unpack({ 1, 2, 3 }), table.unpack({ 1, 2, 3 }, 2), table.unpack({ 1, 2 }, -1, 1))
local packed = table.pack("x", nil, "z")
print(packed.n, packed[3])

-- Sorting: numbers, strings, with a comparator, records by two keys.
local nums = {}
local x = 7
for i = 1, 200 do x = (x * 1103515245 + 12345) % 2147483648; nums[i] = x % 1000 + i * 1000 end
table.sort(nums)
local okorder = true
for i = 2, #nums do if nums[i - 1] > nums[i] then okorder = false end end
print("sorted", okorder, nums[1], nums[200])
move()
local words = { "pear", "apple", "fig", "banana", "kiwi", "cherry" }
table.sort(words)
print(table.concat(words, " "))
table.sort(words, function(a, b) if #a ~= #b then return #a < #b end return a > b end)
print(table.concat(words, " "))
local recs = {}
for i = 1, 30 do recs[i] = { k = i % 4, id = i } end
table.sort(recs, function(a, b) if a.k ~= b.k then return a.k < b.k end return a.id > b.id end)
local ids = {}
for i, r in ipairs(recs) do ids[i] = r.id; if i % 10 == 0 then move() end end
print(table.concat(ids, " "))
print(pcall(table.sort, { 1, "x", 2 }))
print(pcall(table.sort, { 3, 2, 1 }, function(a, b) return true end))
-- # on sequences built across moves, and table.insert at the border.
local seq = {}
for i = 1, 100 do seq[#seq + 1] = i; if i % 30 == 0 then move() end end
print(#seq, seq[#seq], select("#", table.unpack(seq)))
print(pcall(table.insert, seq, 500, 1), pcall(table.insert, seq, 1, 2, 3))
