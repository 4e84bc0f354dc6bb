agentd_test(test_agd_loop SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_loop.c LIBS agd TIMEOUT 30)
