# Shared build settings, applied to targets (never to global flags).

# keepstate_options: warnings and no exceptions for library code.
add_library(keepstate_options INTERFACE)
# A target that calls a library which reports errors by throwing (the sync
# server's Boost) sets its KEEPSTATE_EXCEPTIONS property and catches them at
# each call into a Status.
target_compile_options(keepstate_options INTERFACE
  -Wall -Wextra $<$<BOOL:${KEEPSTATE_WERROR}>:-Werror>
  $<IF:$<BOOL:$<TARGET_PROPERTY:KEEPSTATE_EXCEPTIONS>>,-fexceptions,-fno-exceptions>)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # libc++ 13 only has <experimental/coroutine>; see scheduler/.../coro.h.
  target_compile_options(keepstate_options INTERFACE -Wno-deprecated-experimental-coroutine)
endif()
if(EMSCRIPTEN)
  # Emscripten 3.1.6 as Debian ships it has its libc++ built without
  # inlining: std::string's members, which libc++ declares extern templates,
  # run out of line as chains of calls (assign calls __get_pointer,
  # __is_long, char_traits::move...). Instantiating them here, with our
  # optimisation flags, took a wasm transfer from 971 to 935 ns
  # (bench_engine --breakdown, median of 3 runs each).
  target_compile_definitions(keepstate_options INTERFACE _LIBCPP_DISABLE_EXTERN_TEMPLATE=1)
endif()
if(KEEPSTATE_SANITIZE)
  target_compile_options(keepstate_options INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(keepstate_options INTERFACE -fsanitize=address,undefined)
endif()

# Third-party headers. em++ must never see -I/usr/include (it clashes with
# Emscripten's sysroot), so the few headers we use are linked into a private
# folder in the build tree and only that folder is put on the include path.
set(KEEPSTATE_THIRD_PARTY_INCLUDE ${CMAKE_BINARY_DIR}/third_party/include)
file(MAKE_DIRECTORY ${KEEPSTATE_THIRD_PARTY_INCLUDE}/catch2)
foreach(item flatbuffers xxhash.h catch2/catch.hpp)
  if(NOT EXISTS /usr/include/${item})
    message(FATAL_ERROR "/usr/include/${item} is missing: run scripts/setup")
  endif()
  file(CREATE_LINK /usr/include/${item} ${KEEPSTATE_THIRD_PARTY_INCLUDE}/${item} SYMBOLIC)
endforeach()
add_library(keepstate_third_party INTERFACE)
target_include_directories(keepstate_third_party SYSTEM INTERFACE ${KEEPSTATE_THIRD_PARTY_INCLUDE})

if(EMSCRIPTEN)
  # ctest runs wasm test binaries through Node. Node 20's fetch cannot load a
  # file path, so the loader must fall back to fs.
  set(CMAKE_CROSSCOMPILING_EMULATOR "/usr/bin/node;--no-experimental-fetch;--stack-size=4000"
      CACHE STRING "Runs wasm binaries" FORCE)
  # Flags for wasm executables that run under Node (tests, benchmarks).
  # TOTAL_STACK is 3.1.6's name for the later STACK_SIZE setting.
  add_library(keepstate_wasm_node INTERFACE)
  target_link_options(keepstate_wasm_node INTERFACE
    -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=2GB -sENVIRONMENT=node
    -sTOTAL_STACK=1MB -sEXIT_RUNTIME=1 -sNODERAWFS=1)
endif()

# XXH3 in wasm: xxHash 0.8.1 has no wasm SIMD path; SSE2 through Emscripten's
# emulation is faster than scalar (TOOLCHAIN.md).
add_library(keepstate_simd INTERFACE)
if(EMSCRIPTEN)
  target_compile_options(keepstate_simd INTERFACE -msimd128 -msse2)
  target_link_options(keepstate_simd INTERFACE -msimd128)
endif()

# keepstate_add_catch_test(<target> PREFIX <prefix> SOURCES <...> LIBS <...>)
# A Catch2 test executable registered with ctest, one test per TEST_CASE.
# Catch2 needs exceptions to report a failed REQUIRE, so test code (not the
# libraries under test) is built with -fexceptions; under em++ the binary runs
# in Node through CMAKE_CROSSCOMPILING_EMULATOR.
include(/usr/lib/cmake/Catch2/Catch.cmake)
function(keepstate_add_catch_test target)
  cmake_parse_arguments(ARG "" "PREFIX" "SOURCES;LIBS" ${ARGN})
  add_executable(${target} ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE keepstate_catch_main keepstate_test_support ${ARG_LIBS})
  target_compile_options(${target} PRIVATE -fexceptions -Wall -Wextra $<$<BOOL:${KEEPSTATE_WERROR}>:-Werror>)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++ 12 at -O2 and above reports a -Wrestrict false positive inside
    # libstdc++'s char_traits.h for std::string code in the tests (GCC bug
    # 105329); it is not in our code, so it must not fail a release build.
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(EMSCRIPTEN)
    target_link_options(${target} PRIVATE -fexceptions)
    target_link_libraries(${target} PRIVATE keepstate_wasm_node)
  endif()
  if(KEEPSTATE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  # -w NoTests: a test whose name ctest mangled (a ";" splits it) matches
  # nothing and must fail, not pass without running.
  catch_discover_tests(${target} TEST_PREFIX "${ARG_PREFIX}" DISCOVERY_MODE PRE_TEST EXTRA_ARGS -w NoTests)
endfunction()
