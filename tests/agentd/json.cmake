agentd_test(test_agd_json SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_json.c LIBS agd TIMEOUT 30)
