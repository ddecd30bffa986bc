#!/usr/bin/env bash
# Shared by bench/<module>/run.sh: builds (unless --no-build) and runs
# bench_<module> natively (native-release) and as wasm under Node
# (wasm-release), printing both tables. JSON: bench/results/<module>-{native,wasm}.json.
#
#   bench/support/run_cxx_bench.sh <module> [--no-build] [other args for the benchmark]
set -euo pipefail
module="$1"
shift
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export NODE_PATH=/usr/share/nodejs
# shellcheck source=node.sh
source "$root/bench/support/node.sh"
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
  for preset in native-release wasm-release; do
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset" --target "bench_$module" -j "${JOBS:-2}" >/dev/null
  done
fi
"build/native-release/bench/$module/bench_$module" --json "$out/$module-native.json" "${args[@]+"${args[@]}"}"
"${bench_node[@]}" "build/wasm-release/bench/$module/bench_$module.js" \
  --json "$out/$module-wasm.json" "${args[@]+"${args[@]}"}"
