// The Catch2 main, in its own object: compiling catch.hpp is slow (about 12 s
// under em++), so it is built once and linked into every test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
