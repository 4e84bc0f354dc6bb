# Code segments (issue 5): the signed-segment decoder, the manifest parser and
# the trust-store parser. Their sources are compiled into the fuzzer so that
# libFuzzer's coverage instrumentation sees them.
agentd_fuzzer(fuzz_segment
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_segment.c
          ${PROJECT_SOURCE_DIR}/migrate/mig_segment.c
          ${PROJECT_SOURCE_DIR}/migrate/mig_manifest.c
          ${PROJECT_SOURCE_DIR}/migrate/mig_key.c
          ${PROJECT_SOURCE_DIR}/agentd/agd_trust.c
  LIBS lua_pinned PkgConfig::SODIUM)
target_include_directories(fuzz_segment PRIVATE ${PROJECT_SOURCE_DIR}/migrate ${PROJECT_SOURCE_DIR}/agentd)
