#!/usr/bin/env bash
# Runs the persistence benchmark natively and as wasm under Node and prints
# both tables; JSON in bench/results/persistence-{native,wasm}.json.
#
#   bench/persistence/run.sh [--no-build] [--quick]
exec "$(dirname "$0")/../support/run_cxx_bench.sh" persistence "$@"
