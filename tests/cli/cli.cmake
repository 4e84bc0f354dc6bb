# agentctl units. The CLI is an executable, so its sources are compiled into
# the tests that need them; the output test runs the real binary
# (AGENTCTL_BIN) against fake daemons in the test process.
set(cli_dir ${PROJECT_SOURCE_DIR}/cli)
agentd_test(test_cli_cluster
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cluster.c ${cli_dir}/cli_cluster.c
  TIMEOUT 60)
target_include_directories(test_cli_cluster PRIVATE ${cli_dir})
agentd_test(test_cli_args
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_args.c ${cli_dir}/cli_args.c ${cli_dir}/cli_out.c
  LIBS agd TIMEOUT 60)
target_include_directories(test_cli_args PRIVATE ${cli_dir})
agentd_test(test_cli_output
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_output.c
  LIBS agd PkgConfig::ZMQ TIMEOUT 120)
add_dependencies(test_cli_output agentctl)
agentd_test(test_cli_completion
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_completion.c
  TIMEOUT 60)
agentd_test(test_cli_out
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_out.c ${cli_dir}/cli_out.c
  LIBS agd TIMEOUT 60)
target_include_directories(test_cli_out PRIVATE ${cli_dir})
