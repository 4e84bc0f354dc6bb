# An agent's log follows it (agentctl logs for a touring agent): lines from
# h1, h2, h3 in order with their hosts, kept over kill -9 and restart, and
# a clone's copy of its parent's lines.
agentd_test(test_logs_follow
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_logs_follow.c
  TIMEOUT 400)
add_dependencies(test_logs_follow agentd agentctl)
