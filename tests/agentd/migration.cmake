# Peer protocol units (issue 8): wire codec, ZAP handler and peer sockets,
# transfer state machine, directory.
agentd_test(test_agd_wire SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_wire.c LIBS agd TIMEOUT 120)
