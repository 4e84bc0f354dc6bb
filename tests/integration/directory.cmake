# The directory daemon's host registry (REGISTER/HOST_LIST, `agentctl
# hosts`, agent.hosts()) and durable delivered-message ids (kill -9 between
# delivery and resend), issue 8.
agentd_test(test_directory
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_directory.c
  LIBS agd
  TIMEOUT 600)
add_dependencies(test_directory agentd agentctl)
