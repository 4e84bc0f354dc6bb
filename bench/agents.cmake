agentd_bench(agents SOURCES ${CMAKE_CURRENT_LIST_DIR}/agents.c LIBS agd)
