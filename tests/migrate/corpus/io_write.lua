-- mobility-check: every=0,1,7,100 strict
-- Output through print, io.write, io.stdout, io.output() and captured
-- references to them, interleaved across moves.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

local out = io.stdout
local w = io.write
local method = io.stdout.write
local def = io.output()
for i = 1, 5 do
  print("print", i)
  io.write("io.write ", i, "\n")
  move()
  out:write("io.stdout ", i, "\n")
  w("captured io.write ", i, "\n")
  method(out, "captured method ", i, "\n")
  def:write("io.output() ", i, "\n")
  move()
end
print(io.type(out), io.type(io.stdin), io.type(42), io.output() == io.stdout, out == io.stdout)
io.write(1, " ", 2.5, " ", "three", "\n")
print(io.stdout:write("chained "):write("writes\n") == io.stdout)
io.stderr:write("this goes to stderr\n")
print(pcall(io.write, {}))
print(tostring(io.stdout):match("^file %(") ~= nil)
io.stdout:setvbuf("full")
move()
io.write("after setvbuf\n")
io.stdout:flush()
io.flush()
print("done")
