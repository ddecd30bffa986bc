#!/usr/bin/env bash
# Runs the engine benchmark natively and as wasm under Node and prints both
# tables; JSON in bench/results/engine-{native,wasm}.json.
#
#   bench/engine/run.sh [--no-build] [--quick]
exec "$(dirname "$0")/../support/run_cxx_bench.sh" engine "$@"
