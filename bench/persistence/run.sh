#!/usr/bin/env bash
# Runs the persistence benchmark natively (native-release) and as wasm under
# Node (wasm-release) and prints both tables. JSON:
# bench/results/persistence-{native,wasm}.json.
#
#   bench/persistence/run.sh [--no-build] [--quick]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export NODE_PATH=/usr/share/nodejs
out="$root/bench/results"
mkdir -p "$out"
build=1
args=()
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    *) args+=("$a") ;;
  esac
done
if ((build)); then
  cmake --preset native-release >/dev/null && cmake --build --preset native-release --target bench_persistence -j "${JOBS:-2}" >/dev/null
  cmake --preset wasm-release >/dev/null && cmake --build --preset wasm-release --target bench_persistence -j "${JOBS:-2}" >/dev/null
fi
build/native-release/bench/persistence/bench_persistence --json "$out/persistence-native.json" "${args[@]+"${args[@]}"}"
node --no-experimental-fetch build/wasm-release/bench/persistence/bench_persistence.js \
  --json "$out/persistence-wasm.json" "${args[@]+"${args[@]}"}"
