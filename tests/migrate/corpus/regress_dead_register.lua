-- mobility-check: every=1 strict
-- Engine regression: table.concat (any luaL_Buffer user: string.format,
-- gsub, rep...) leaves its buffer's light userdata in a register above the
-- live ones; a count-hook yield a few instructions later must still persist
-- (a dead register holds no value the program can reach).
local s = table.concat({ "a", "b" }, ",")
local a, b, c, d, e, f = 1, 2, 3, 4, 5, 6
print(s, a + b + c + d + e + f)
