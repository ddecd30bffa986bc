# keepstate_add_wasm_module(<name> [SOURCES <src>...] [LIBS <lib>...]
#                           [OUTPUT_NAME <file stem>])
#
# Links a keepstate wasm module: the C ABI of js-bindings (keepstate_exports:
# store, transactions, scans, commits, scheduler) plus the caller's own C++
# sources and libraries, as an ES module factory (`<stem>.js` + `<stem>.wasm`)
# that runs in a page, a worker and Node. The exported functions come from the
# single list in js-bindings/abi.h (through the generated response file);
# Emscripten 3.1.6 setting names (TOTAL_STACK, not STACK_SIZE).
function(keepstate_add_wasm_module name)
  cmake_parse_arguments(ARG "" "OUTPUT_NAME" "SOURCES;LIBS" ${ARGN})
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
    -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=2GB -sTOTAL_STACK=1MB
    -sFILESYSTEM=0
    # A library must not install process-wide handlers in the host's Node.
    -sNODEJS_CATCH_EXIT=0 -sNODEJS_CATCH_REJECTION=0
    -sEXPORTED_FUNCTIONS=@${KEEPSTATE_EXPORTED_FUNCTIONS_FILE}
    --extern-pre-js ${KEEPSTATE_JS_BINDINGS_DIR}/node_prelude.js)
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS
    ${KEEPSTATE_EXPORTED_FUNCTIONS_FILE} ${KEEPSTATE_JS_BINDINGS_DIR}/node_prelude.js)
  add_dependencies(${name} keepstate_abi)
endfunction()
