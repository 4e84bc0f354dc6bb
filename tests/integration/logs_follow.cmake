# An agent's log follows it (agentctl logs for a touring agent): lines from
# h1, h2, h3 in order with their hosts, kept over kill -9 and restart, a
# clone's copy of its parent's lines, a weak push; log parts from a peer
# played by the test (none, good, hostile) at a real daemon.
agentd_test(test_logs_follow
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_logs_follow.c
  LIBS agd TIMEOUT 400)
add_dependencies(test_logs_follow agentd agentctl)
