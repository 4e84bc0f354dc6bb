# agentctl, the example agents and the demo cluster, end to end.
#   test_agents_mock     agents/ against a mock host API (no daemon)
agentd_test(test_agents_mock
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_agents_mock.c
  LIBS mig lua_pinned TIMEOUT 60)
#   test_cli             agentctl against a real 3-host loopback cluster
agentd_test(test_cli
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli.c ${CMAKE_CURRENT_LIST_DIR}/itest.c
  LIBS agd TIMEOUT 600)
add_dependencies(test_cli agentd agentctl)
#   test_demo            scripts/demo on this build: loopback, and network
#                        namespaces when run as root (skipped otherwise)
agentd_test(test_demo
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_demo.c
  TIMEOUT 1200)
add_dependencies(test_demo agentd agentctl)
#   test_agents_cluster  agents/ on a real 3-host loopback cluster
agentd_test(test_agents_cluster
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_agents_cluster.c
  LIBS agd TIMEOUT 900)
add_dependencies(test_agents_cluster agentd agentctl)
#   test_cli_socket_activation  agentd started by systemd-socket-activate
#                        serves the first connection on the passed socket
agentd_test(test_cli_socket_activation
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli_socket_activation.c
  TIMEOUT 120)
add_dependencies(test_cli_socket_activation agentd agentctl)
