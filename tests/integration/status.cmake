agentd_test(test_daemon_status SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_status.c TIMEOUT 60)
