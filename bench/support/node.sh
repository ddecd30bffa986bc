# Sourced by the benchmark scripts: how they run a wasm benchmark under Node.
#
# --no-liftoff: V8 compiles every wasm function with its optimizing compiler
# before running it, so that every contender is measured in the code a page
# ends up running once warm. Otherwise V8 starts each function in baseline
# code and swaps in optimized code only for later calls (wasm has no
# on-stack replacement): a timed loop that runs inside one long call stays
# baseline for its whole run. That slowed std::map's loops in bench/engine
# (written inline) more than the store's (mostly calls into the engine):
# std::map's transfer ran 15-25 % slower than in steady state.
# --no-experimental-fetch: Emscripten's loader reads the .wasm from a path.
bench_node=(node --no-experimental-fetch --no-liftoff)
