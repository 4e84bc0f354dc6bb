# A real agentd on loopback and ipc endpoints, driven over ZeroMQ with
# signed segments: scheduling, quotas, control commands, bad requests. The
# same tests run with isolation = process (ITEST_ISOLATION).
agentd_test(test_daemon_runtime SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_runtime.c
  ${CMAKE_CURRENT_LIST_DIR}/itest.c LIBS agd TIMEOUT 240)
agentd_test(test_daemon_runtime_process SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_runtime.c
  ${CMAKE_CURRENT_LIST_DIR}/itest.c LIBS agd TIMEOUT 240)
target_compile_definitions(test_daemon_runtime_process PRIVATE ITEST_ISOLATION="process")
