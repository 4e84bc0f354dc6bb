# mobility-check against the reference interpreter.
#
# lua_ref is the pinned Lua's own standalone interpreter (lua.c from the
# verified source tree, compiled here and never committed): the corpus in
# tests/migrate/corpus/ must print the same bytes and exit with the same
# status under it and under mobility-check, for every move period.
add_executable(lua_ref ${LUA_SOURCE_DIR}/src/lua.c)
target_compile_definitions(lua_ref PRIVATE LUA_USE_POSIX)
# lua.c's warnings are Lua's business, as for lua_pinned.
target_compile_options(lua_ref PRIVATE -w)
target_link_libraries(lua_ref PRIVATE lua_pinned)

agentd_test(test_mobility_check
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mobility_check.c
  LIBS mig
  TIMEOUT 180)
target_compile_definitions(test_mobility_check PRIVATE
  MOBILITY_CHECK_BIN="$<TARGET_FILE:mobility-check>"
  LUA_REF_BIN="$<TARGET_FILE:lua_ref>"
  CORPUS_DIR="${CMAKE_CURRENT_LIST_DIR}/corpus")
add_dependencies(test_mobility_check mobility-check lua_ref)
