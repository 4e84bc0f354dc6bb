-- mobility-check: every=1,2,3,5 strict
-- Engine regression: a count-hook yield between a call returning many
-- results (its values above the frame's registers) and the call that
-- consumes them must restore.
local t = {}
for i = 1, 40 do t[i] = i end
local function count(...) return select("#", ...) end
print(count(table.unpack(t)))
print(select("#", string.byte(string.rep("x", 60), 1, -1)))
