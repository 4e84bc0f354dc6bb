# The daemon's durable store and trust store (agentd/agd_store, agd_trust).
agentd_test(test_agd_store SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_store.c LIBS agd TIMEOUT 120)
agentd_test(test_agd_trust SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_trust.c LIBS agd TIMEOUT 60)
