# The strong-mobility engine (migrate/mig_state.h): round trips of every
# value kind, coroutines with their stacks, and hostile input.
foreach(t values coroutines hostile)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_state_${t}.c)
    agentd_test(test_mig_state_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_state_${t}.c LIBS mig TIMEOUT 300)
  endif()
endforeach()
