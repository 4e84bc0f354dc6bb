# The strong-mobility engine's speed and size (issue 4): persist/restore of
# three workloads. Shares mobility-check's state preparation (header-only).
agentd_bench(persist SOURCES ${CMAKE_CURRENT_LIST_DIR}/persist.c LIBS mig)
target_include_directories(bench_persist PRIVATE ${PROJECT_SOURCE_DIR}/migrate/tools)
