# A real agentd on loopback and ipc endpoints, driven over ZeroMQ with
# signed segments: scheduling, quotas, control commands, bad requests.
agentd_test(test_daemon_runtime SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_runtime.c
  ${CMAKE_CURRENT_LIST_DIR}/itest.c LIBS agd TIMEOUT 240)
