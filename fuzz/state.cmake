# The execution-state decoder (issue 4): mig_state_peek + mig_state_restore
# on states prepared as mobility-check prepares them, then a bounded resume.
# The engine's sources are compiled into the fuzzer so that libFuzzer's
# coverage instrumentation sees them; the seed states in
# corpus/fuzz_state_restore/ were dumped from the corpus script registered
# here as the external source.
file(GLOB fuzz_state_mig CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/migrate/mig_*.c)
list(REMOVE_ITEM fuzz_state_mig ${PROJECT_SOURCE_DIR}/migrate/mig_seed.c)
agentd_fuzzer(fuzz_state_restore
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_state_restore.c ${fuzz_state_mig}
  LIBS lua_internal PkgConfig::SODIUM)
target_include_directories(fuzz_state_restore PRIVATE
  ${PROJECT_SOURCE_DIR}/migrate ${PROJECT_SOURCE_DIR}/migrate/tools)
target_compile_definitions(fuzz_state_restore PRIVATE
  FUZZ_STATE_SOURCE="${PROJECT_SOURCE_DIR}/tests/migrate/corpus/state_mix.lua")
