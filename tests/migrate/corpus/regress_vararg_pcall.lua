-- mobility-check: every=1,2,3,4 strict
-- Engine regression: a vararg Lua function called by a C function (pcall)
-- has its frame moved above its arguments; a hook yield inside it must
-- restore ("frame above a C frame" was refused).
local function v(...) local a = ... return a end
print(pcall(v, 1))
print(pcall(v, "x", "y"))
