# Durability: passivation and activation, SIGTERM and kill -9 with restarts.
agentd_test(test_daemon_persist SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_persist.c
  ${CMAKE_CURRENT_LIST_DIR}/itest.c LIBS agd TIMEOUT 240)
