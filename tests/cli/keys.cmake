# agentctl keygen, sign, verify, inspect: runs the real binary (AGENTCTL_BIN).
agentd_test(test_cli_keys SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_keys.c TIMEOUT 120)
add_dependencies(test_cli_keys agentctl)
