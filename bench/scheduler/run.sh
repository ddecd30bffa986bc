#!/usr/bin/env bash
# Runs the scheduler benchmark natively (native-release) and as wasm under
# Node (wasm-release), plus the Asyncify fiber ring, and prints both tables;
# the wasm table includes the coroutine/Asyncify ratio. JSON goes to
# bench/results/scheduler-{native,wasm,asyncify}.json.
#
#   bench/scheduler/run.sh            # configure + build the bench targets, then run
#   bench/scheduler/run.sh --no-build # run what is already built
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export NODE_PATH=/usr/share/nodejs
jobs="${JOBS:-2}"
out="$root/bench/results"
mkdir -p "$out"

if [[ "${1:-}" != "--no-build" ]]; then
  cmake --preset native-release >/dev/null
  cmake --build --preset native-release --target bench_scheduler -j "$jobs" >/dev/null
  cmake --preset wasm-release >/dev/null
  cmake --build --preset wasm-release --target bench_scheduler bench_scheduler_asyncify -j "$jobs" >/dev/null
fi

# shellcheck source=../support/node.sh
source "$root/bench/support/node.sh"
node=("${bench_node[@]}" --stack-size=4000)

build/native-release/bench/scheduler/bench_scheduler --json "$out/scheduler-native.json"

asyncify_line="$("${node[@]}" build/wasm-release/bench/scheduler/bench_scheduler_asyncify.js \
  --json "$out/scheduler-asyncify.json" | tee /dev/stderr | grep '^asyncify_yields_per_sec=')"
asyncify="${asyncify_line#asyncify_yields_per_sec=}"

"${node[@]}" build/wasm-release/bench/scheduler/bench_scheduler.js \
  --asyncify "$asyncify" --json "$out/scheduler-wasm.json"
