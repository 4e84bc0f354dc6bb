# Socket activation helper (agentd/agd_sd.c): environment parsing and the
# hand-over of a listening descriptor to ZeroMQ, in a forked child.
agentd_test(test_agd_sd SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sd.c LIBS agd TIMEOUT 60)
