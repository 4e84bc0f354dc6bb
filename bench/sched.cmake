agentd_bench(sched SOURCES ${CMAKE_CURRENT_LIST_DIR}/sched.c LIBS agd)
