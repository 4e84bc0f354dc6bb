# The pinned Lua 5.4.7, built from verified source as a static library.
#
# Two targets:
#   lua_pinned    the library, with only the public headers (lua.h, lauxlib.h,
#                 lualib.h, luaconf.h) on its include path;
#   lua_internal  adds Lua's internal headers (lstate.h, lobject.h, ...). Only
#                 migrate/ may link it: the persistence engine is the one place
#                 that knows Lua's object layout.
#
# Debug and sanitizer builds define LUAI_ASSERT and LUA_USE_APICHECK so that
# Lua's own assertions check whatever the persistence code builds.
#
# The string-hash seed comes from migrate/mig_seed.c (luai_makeseed is defined
# to call it), so that a restored agent gets the seed it had: the order of
# `next` over a table depends on it.

set(LUA_SOURCE_DIR "" CACHE PATH "Pinned Lua 5.4.7 source; fetched by scripts/fetch-lua when empty")
if(NOT LUA_SOURCE_DIR)
  execute_process(
    COMMAND "${PROJECT_SOURCE_DIR}/scripts/fetch-lua"
    OUTPUT_VARIABLE fetched_dir
    RESULT_VARIABLE fetch_rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT fetch_rc EQUAL 0 OR NOT fetched_dir)
    message(FATAL_ERROR "scripts/fetch-lua failed: cannot obtain the pinned Lua 5.4.7 source")
  endif()
  set(LUA_SOURCE_DIR "${fetched_dir}" CACHE PATH "Pinned Lua 5.4.7 source" FORCE)
endif()

if(NOT EXISTS "${LUA_SOURCE_DIR}/src/lstate.c" OR NOT EXISTS "${LUA_SOURCE_DIR}/.verified")
  message(FATAL_ERROR "${LUA_SOURCE_DIR} is not a verified Lua source tree (run scripts/fetch-lua)")
endif()
file(STRINGS "${LUA_SOURCE_DIR}/src/lua.h" lua_release REGEX "#define LUA_VERSION_RELEASE[ \t]+\"[0-9]+\"")
if(NOT lua_release MATCHES "\"7\"")
  message(FATAL_ERROR "${LUA_SOURCE_DIR} is not Lua 5.4.7")
endif()

set(lua_core lapi lcode lctype ldebug ldo ldump lfunc lgc llex lmem lobject
  lopcodes lparser lstate lstring ltable ltm lundump lvm lzio
  lauxlib lbaselib lcorolib ldblib liolib lmathlib loadlib loslib lstrlib
  ltablib lutf8lib linit)
set(lua_sources "")
foreach(f IN LISTS lua_core)
  list(APPEND lua_sources "${LUA_SOURCE_DIR}/src/${f}.c")
endforeach()

# Public headers are copied apart so that nothing but migrate/ sees lstate.h.
set(lua_public_dir "${PROJECT_BINARY_DIR}/lua-public")
foreach(h lua.h luaconf.h lauxlib.h lualib.h)
  configure_file("${LUA_SOURCE_DIR}/src/${h}" "${lua_public_dir}/${h}" COPYONLY)
endforeach()

add_library(lua_pinned STATIC ${lua_sources} "${PROJECT_SOURCE_DIR}/migrate/mig_seed.c")
target_compile_features(lua_pinned PUBLIC c_std_11)
target_include_directories(lua_pinned SYSTEM PUBLIC "${lua_public_dir}")
target_include_directories(lua_pinned PRIVATE "${LUA_SOURCE_DIR}/src" "${PROJECT_SOURCE_DIR}/migrate")
target_compile_definitions(lua_pinned
  PUBLIC $<$<OR:$<CONFIG:Debug>,$<BOOL:${AGENTD_SANITIZE}>>:LUAI_ASSERT LUA_USE_APICHECK>
  PRIVATE LUA_USE_POSIX _GNU_SOURCE)
set_source_files_properties("${LUA_SOURCE_DIR}/src/lstate.c" PROPERTIES
  COMPILE_OPTIONS "-include;${PROJECT_SOURCE_DIR}/migrate/mig_seed.h"
  COMPILE_DEFINITIONS "luai_makeseed=mig_seed_make")
target_compile_options(lua_pinned PRIVATE -w)
set_target_properties(lua_pinned PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_link_libraries(lua_pinned PUBLIC agentd_sanitize m)

add_library(lua_internal INTERFACE)
target_include_directories(lua_internal SYSTEM INTERFACE "${LUA_SOURCE_DIR}/src")
target_link_libraries(lua_internal INTERFACE lua_pinned)
