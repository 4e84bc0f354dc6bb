# Resources between real daemons (issue 6): each cell's first choice and the
# main fall-backs on real files and key-value stores, GR after further hops
# and with its home killed.
agentd_test(test_resources
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_resources.c ${CMAKE_CURRENT_LIST_DIR}/itest.c
  LIBS agd
  TIMEOUT 600)
add_dependencies(test_resources agentd agentctl)
