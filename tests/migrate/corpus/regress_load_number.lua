-- mobility-check: every=0 moves=0
-- Engine regression: load accepts a number as its chunk (converted to a
-- string, as the standard load does) instead of raising.
print(load(42))
print(load(1.5))
