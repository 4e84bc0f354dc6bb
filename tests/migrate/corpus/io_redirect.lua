-- mobility-check: every=0,7 unpersistable
-- While io.output() is redirected to a file, the io library's default output
-- is an open file: the script must not move there (moving would silently
-- send io.write to stdout); once it is back to stdout, it moves again.
local MAIN = coroutine.running()
local function move()
  if coroutine.running() == MAIN and coroutine.isyieldable() then coroutine.yield() end
end

move()
local f = assert(io.tmpfile())
local old = io.output()
io.output(f)
io.write("to the file\n")
move()
io.write("still to the file\n")
io.output(old)
f:seek("set")
print("file has", (f:read("a"):gsub("\n", "|")))
f:close()
f = nil
move()
io.write("back on stdout\n")
print(io.output() == io.stdout)
