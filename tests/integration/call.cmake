# Access transparency between real daemons on loopback (issue 8): exported
# methods answer agentctl call and proxies in other agents, wherever the
# agent is, also while it moves; errors and timeouts reach the caller.
agentd_test(test_call
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_call.c
  LIBS agd
  TIMEOUT 600)
add_dependencies(test_call agentd agentctl)
# The JSON conversions of `call` (no daemon), from the same file.
agentd_test(test_call_json
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_call.c
  LIBS agd
  TIMEOUT 60)
target_compile_definitions(test_call_json PRIVATE CALL_JSON_ONLY)
