# tests/resources: the policy table alone, each kind's local I/O, the op
# codec, the action mechanics between registries in one process, and the
# Lua handles in plain states (no daemon).
agentd_test(test_res_policy SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_policy.c LIBS res TIMEOUT 30)
agentd_test(test_res_kinds SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_kinds.c LIBS res PkgConfig::SQLITE TIMEOUT 60)
agentd_test(test_res_op SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_op.c LIBS res TIMEOUT 60)
agentd_test(test_res_actions SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_actions.c LIBS res PkgConfig::SQLITE TIMEOUT 120)
agentd_test(test_res_lua SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_lua.c LIBS res TIMEOUT 60)
agentd_test(test_res_mobility SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mobility.c LIBS res mig TIMEOUT 60)
