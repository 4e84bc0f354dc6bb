# The peer wire codec (issue 8) and the log part a TRANSFER carries. The
# codecs are compiled into the fuzzer so that libFuzzer's coverage
# instrumentation sees them.
agentd_fuzzer(fuzz_wire
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_wire.c ${PROJECT_SOURCE_DIR}/agentd/agd_wire.c
    ${PROJECT_SOURCE_DIR}/agentd/agd_logring.c ${PROJECT_SOURCE_DIR}/agentd/agd_json.c
  LIBS agd_log)
target_include_directories(fuzz_wire PRIVATE ${PROJECT_SOURCE_DIR}/agentd)
