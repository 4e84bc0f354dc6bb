# Durability: passivation and activation, SIGTERM and kill -9 with restarts,
# in both isolation modes.
agentd_test(test_daemon_persist SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_persist.c
  ${CMAKE_CURRENT_LIST_DIR}/itest.c LIBS agd TIMEOUT 240)
agentd_test(test_daemon_persist_process SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_persist.c
  ${CMAKE_CURRENT_LIST_DIR}/itest.c LIBS agd TIMEOUT 240)
target_compile_definitions(test_daemon_persist_process PRIVATE ITEST_ISOLATION="process")
