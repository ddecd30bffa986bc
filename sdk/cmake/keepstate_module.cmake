# keepstate_add_module(<name> SOURCES <src>... [LIBS <lib>...] [OUTPUT_NAME <stem>]
#                      [SPLIT_NODE_GLUE])
#
# Builds a user's own keepstate wasm module: their sources (which register
# mutators with KEEPSTATE_MUTATOR, see keepstate/sdk/module.h) linked with
# keepstate::sdk and the engine's C ABI, as `<stem>.js` + `<stem>.wasm` (an
# ES module factory for openStore(name, { module: { factory, wasmUrl } })).
# The sources are compiled into the module itself, never through a static
# library, so the linker cannot drop their registering static initializers.
# SPLIT_NODE_GLUE: `<stem>.js` for pages, workers and browser bundlers and
# `<stem>.node.js` for Node, instead of one `<stem>.js` for all three (see
# js-bindings/cmake/keepstate_wasm.cmake).
# Emscripten builds only (keepstate_add_wasm_module comes from js-bindings).
function(keepstate_add_module name)
  cmake_parse_arguments(ARG "SPLIT_NODE_GLUE" "OUTPUT_NAME" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "keepstate_add_module(${name}): SOURCES is required")
  endif()
  if(NOT COMMAND keepstate_add_wasm_module)
    message(FATAL_ERROR "keepstate_add_module(${name}) needs an Emscripten build (js-bindings)")
  endif()
  set(output ${name})
  if(ARG_OUTPUT_NAME)
    set(output ${ARG_OUTPUT_NAME})
  endif()
  set(split)
  if(ARG_SPLIT_NODE_GLUE)
    set(split SPLIT_NODE_GLUE)
  endif()
  keepstate_add_wasm_module(${name} SOURCES ${ARG_SOURCES} LIBS keepstate::sdk ${ARG_LIBS}
                            OUTPUT_NAME ${output} ${split})
endfunction()
