-- mobility-check: every=0,1 moves=0
-- A syntax error: both interpreters refuse the script with status 1.
print("never")
local x = = 1
