agentd_test(test_mig_lua SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_lua.c LIBS mig TIMEOUT 30)
