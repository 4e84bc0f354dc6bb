# Moves agents ask for themselves (agent.migrate, agent.clone) between real
# daemons on loopback, and a push of a compute-bound agent (issue 8).
agentd_test(test_migration_self
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_migration_self.c
  TIMEOUT 300)
add_dependencies(test_migration_self agentd agentctl)
