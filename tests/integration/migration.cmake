# Migration between real daemons on loopback (issue 8): push, pull, state
# carried across, kill -9 of either daemon at each protocol step, and a
# source stopped mid-transfer.
agentd_test(test_migration
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_migration.c
  TIMEOUT 600)
add_dependencies(test_migration agentd agentctl)
