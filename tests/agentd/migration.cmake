# Peer protocol units (issue 8): wire codec, ZAP handler and peer sockets,
# transfer state machine, directory.
agentd_test(test_agd_wire SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_wire.c LIBS agd TIMEOUT 120)
agentd_test(test_agd_zap SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_zap.c LIBS agd TIMEOUT 60)
agentd_test(test_agd_peer SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_peer.c LIBS agd TIMEOUT 120)
agentd_test(test_agd_xfer SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_xfer.c LIBS agd TIMEOUT 300)
agentd_test(test_agd_dir SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_dir.c LIBS agd TIMEOUT 120)
