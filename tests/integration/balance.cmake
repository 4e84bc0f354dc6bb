# Daemon-side load balancing (issue 8): an idle host pulls agents from a busy
# one ([balance] mode = pull), nothing moves when it is off, weak-only agents
# are never pulled.
agentd_test(test_balance
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_balance.c
  LIBS agd
  TIMEOUT 600)
add_dependencies(test_balance agentd agentctl)
