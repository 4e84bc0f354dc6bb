# The daemon's resource glue without daemons: the resource segment codec
# (round trip, caps, truncation, mutation) and device targets.
agentd_test(test_agd_res SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_agd_res.c LIBS agd TIMEOUT 120)
