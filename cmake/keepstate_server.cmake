# keepstate_add_server(<name> SOURCES <src>... [LIBS <lib>...])
#
# Builds an app's sync server (docs/sync.md, "The server"): the app's mutator
# sources — the same files its wasm module is built from with
# keepstate_add_module — compiled into an executable with keepstate::server
# and its main (server/main/server_main.cc: --host, --port, --data or
# --postgres, --tokens). The sources go into the executable itself, never
# through a static library, so their registering static initializers are
# kept. Native builds only.
function(keepstate_add_server name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "keepstate_add_server(${name}): SOURCES is required")
  endif()
  if(EMSCRIPTEN OR NOT TARGET keepstate::server)
    message(FATAL_ERROR "keepstate_add_server(${name}) needs a native build (keepstate::server)")
  endif()
  add_executable(${name} ${ARG_SOURCES} ${KEEPSTATE_SERVER_MAIN})
  target_link_libraries(${name} PRIVATE keepstate::server keepstate_options ${ARG_LIBS})
endfunction()
