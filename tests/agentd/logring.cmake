# An agent's log ring and the log part that travels with it (agd_logring).
agentd_test(test_agd_logring SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_logring.c LIBS agd TIMEOUT 60)
