agentd_test(test_agd_rt SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rt.c LIBS agd TIMEOUT 120)
agentd_test(test_agd_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_config.c LIBS agd TIMEOUT 30)
