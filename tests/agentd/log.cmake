agentd_test(test_agd_log SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_log.c LIBS agd_log TIMEOUT 30)
