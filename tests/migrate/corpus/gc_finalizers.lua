-- mobility-check: every=0,1,7,100,1000 strict
-- Finalizers of objects that moved run once, in plain Lua's order (reverse
-- order of marking), when they become garbage or at the end; weak tables
-- lose collected entries.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local log = {}
local function fin(o) log[#log + 1] = o.name end
local function obj(name) return setmetatable({ name = name }, { __gc = fin }) end

local held = {}
for i = 1, 6 do held[i] = obj("h" .. i); move() end
print("alive", #held)
held = nil
collectgarbage()
collectgarbage()
print("collected", table.concat(log, " "))
log = {}

-- Resurrection: a finalizer storing its object keeps it alive.
local saved
do
  local r = setmetatable({ name = "phoenix" }, { __gc = function(o) saved = o end })
end
collectgarbage()
move()
print("resurrected", saved and saved.name)

-- Weak values and keys.
local weakv = setmetatable({}, { __mode = "v" })
local weakk = setmetatable({}, { __mode = "k" })
local strong = { "kept" }
weakv[1] = strong
weakv[2] = { "dropped" }
weakk[strong] = "kept key"
weakk[{}] = "dropped key"
move()
collectgarbage()
local nk = 0
for _ in pairs(weakk) do nk = nk + 1 end
print("weak", weakv[1] and weakv[1][1], weakv[2], nk, weakk[strong])

-- Ephemeron: a value referring to its own key does not keep it alive.
local eph = setmetatable({}, { __mode = "k" })
do local k = {}; eph[k] = { back = k } end
move()
collectgarbage()
print("ephemeron", next(eph))

-- Objects still alive at the end are finalized by the final close, after
-- the last line of the script.
for i = 1, 3 do _G["late" .. i] = setmetatable({}, { __gc = function() print("end finalizer", i) end }) end
move()
print("last line")
