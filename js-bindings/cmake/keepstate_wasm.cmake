# keepstate_add_wasm_module(<name> [SOURCES <src>...] [LIBS <lib>...]
#                           [OUTPUT_NAME <file stem>] [SPLIT_NODE_GLUE])
#
# Links a keepstate wasm module: the C ABI of js-bindings (keepstate_exports:
# store, transactions, scans, commits, scheduler) plus the caller's own C++
# sources and libraries, as an ES module factory (`<stem>.js` + `<stem>.wasm`).
# The exported functions come from the single list in js-bindings/abi.h
# (through the generated response file); Emscripten 3.1.6 setting names
# (TOTAL_STACK, not STACK_SIZE).
#
# Which glue (the Emscripten JS) the link writes:
#   default          `<stem>.js` = node_prelude.js + glue: one file for a page,
#                    a worker and Node, but a browser bundler (webpack,
#                    esbuild) fails on the prelude's 'node:' imports.
#   SPLIT_NODE_GLUE  `<stem>.js` = web_prelude.js + glue, for pages, workers
#                    and browser bundles (no Node module named anywhere a
#                    bundler resolves), and `<stem>.node.js` = node_prelude.js
#                    + the same glue, for Node, derived from it after the link
#                    (cmake/node_glue.cmake): one link, one .wasm. The npm
#                    package's module is built so (its `node` export loads
#                    keepstate.node.js).
function(keepstate_add_wasm_module name)
  cmake_parse_arguments(ARG "SPLIT_NODE_GLUE" "OUTPUT_NAME" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_SOURCES)
    # A module with only the standard exports still needs one source file.
    set(ARG_SOURCES ${KEEPSTATE_JS_BINDINGS_DIR}/module_main.cc)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE keepstate_exports keepstate_options ${ARG_LIBS})
  if(ARG_OUTPUT_NAME)
    set_target_properties(${name} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  set_target_properties(${name} PROPERTIES SUFFIX .js)
  target_link_options(${name} PRIVATE
    -fno-exceptions
    -sMODULARIZE=1 -sEXPORT_ES6=1 -sEXPORT_NAME=createKeepstateModule
    -sENVIRONMENT=web,worker,node
    -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sTOTAL_STACK=1MB
    -sFILESYSTEM=0
    # A library must not install process-wide handlers in the host's Node.
    -sNODEJS_CATCH_EXIT=0 -sNODEJS_CATCH_REJECTION=0
    -sEXPORTED_FUNCTIONS=@${KEEPSTATE_EXPORTED_FUNCTIONS_FILE})
  set(node_prelude ${KEEPSTATE_JS_BINDINGS_DIR}/node_prelude.js)
  set(web_prelude ${KEEPSTATE_JS_BINDINGS_DIR}/web_prelude.js)
  if(ARG_SPLIT_NODE_GLUE)
    target_link_options(${name} PRIVATE --extern-pre-js ${web_prelude})
    # POST_BUILD: runs after every link of the target, and only then.
    add_custom_command(TARGET ${name} POST_BUILD
      COMMAND ${CMAKE_COMMAND} -DGLUE=$<TARGET_FILE:${name}>
              -DWEB_PRELUDE=${web_prelude} -DNODE_PRELUDE=${node_prelude}
              -DOUTPUT=$<TARGET_FILE_DIR:${name}>/$<TARGET_FILE_BASE_NAME:${name}>.node.js
              -P ${KEEPSTATE_JS_BINDINGS_DIR}/cmake/node_glue.cmake
      COMMENT "${name}: the Node glue (node_prelude.js in place of web_prelude.js)"
      VERBATIM)
  else()
    target_link_options(${name} PRIVATE --extern-pre-js ${node_prelude})
  endif()
  # A changed prelude relinks (and so rewrites the Node glue too).
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS
    ${KEEPSTATE_EXPORTED_FUNCTIONS_FILE} ${node_prelude} ${web_prelude}
    ${KEEPSTATE_JS_BINDINGS_DIR}/cmake/node_glue.cmake)
  add_dependencies(${name} keepstate_abi)
endfunction()
