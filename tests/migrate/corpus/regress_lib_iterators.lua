-- mobility-check: every=0 strict
-- Engine regression: the standard libraries' iterators must move while a
-- loop over them is suspended: ipairs, string.gmatch, utf8.codes.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end
local out = {}
for i, v in ipairs({ 10, 20 }) do out[#out + 1] = i .. "=" .. v; move() end
for w in ("a b"):gmatch("%a") do out[#out + 1] = w; move() end
for p, c in utf8.codes("ab") do out[#out + 1] = p .. ":" .. c; move() end
print(table.concat(out, " "))
