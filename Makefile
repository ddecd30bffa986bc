# The README's two commands: `make demo` (the main job) and `make test`
# (every test). Both run scripts/setup first, so a fresh Debian 12 machine
# needs nothing installed by hand.
JOBS ?= $(shell nproc)
export NODE_PATH := /usr/share/nodejs
CXX_TEST_PRESETS := native-debug native-asan wasm-release
PRESETS := $(CXX_TEST_PRESETS) native-release native-fuzz
BUILD_TARGETS := $(addprefix build-,$(PRESETS))
CXX_TEST_TARGETS := $(addprefix test-cxx-,$(CXX_TEST_PRESETS))

.PHONY: all setup test test-cxx test-js test-conformance test-e2e test-fuzz test-consumer conformance stress demo serve bench bench-browser bench-sync fuzz clean \
	$(BUILD_TARGETS) $(CXX_TEST_TARGETS)

all: test

setup:
	scripts/setup

# Static pattern rules: make skips implicit rules for .PHONY targets.
$(BUILD_TARGETS): build-%: setup
	cmake --preset $* >/dev/null
	cmake --build --preset $* -j $(JOBS)

# --no-tests=error: a tree that registered no tests is a failure, not a pass.
# Native presets run under scripts/with-postgres: the sync server's
# PostgreSQL tests get a throwaway cluster (and fail without one).
$(CXX_TEST_TARGETS): test-cxx-%: build-%
	$(if $(filter wasm-%,$*),,scripts/with-postgres) ctest --preset $* -j $(JOBS) --no-tests=error

test-cxx: $(CXX_TEST_TARGETS)

# The npm package (js-bindings/): wasm module from wasm-release, TypeScript
# build into js-bindings/dist, Node's test runner with fake-indexeddb; this
# includes the API fuzzer for 60 s (KEEPSTATE_FUZZ_SECONDS) and the sync
# client against the ledger's sync server (native-debug, on SQLite).
test-js: build-wasm-release build-native-debug
	npm run build:js
	npm run test:js

# The determinism conformance suite (tests/conformance; docs/sync.md,
# "Determinism"): generated sequences of the ledger's mutators and the SDK's
# keepstate.put/keepstate.delete, run natively (keepstate-conformance,
# native-debug) and in wasm (the package under Node, memory storage); the
# outcomes, the states and, every 50th sequence, the exported pages must be
# identical. Prints the sequences, mutations, outcomes by mutator and time;
# fails with the first differing seed, mutation and key. make test runs
# $(CONFORMANCE_SEQUENCES) sequences (about 15 s), make conformance 10,000.
CONFORMANCE_SEQUENCES ?= 1000
test-conformance: build-wasm-release build-native-debug
	npm run build:js
	node tests/conformance/run.mjs --count $(CONFORMANCE_SEQUENCES)

conformance:
	$(MAKE) --no-print-directory test-conformance CONFORMANCE_SEQUENCES=10000

# Playwright (e2e/) in Debian's Chromium, firefox-esr (WebDriver BiDi) and
# WebKitGTK's MiniBrowser (WebKitWebDriver under xvfb-run): the package as
# built by test-js's steps, served on 127.0.0.1; screenshots land in
# e2e/test-results/. The native build gives snapshot.spec.ts its
# keepstate-snapshot. One engine: `npx playwright test -c e2e/playwright.config.ts --project=firefox`.
test-e2e: build-wasm-release build-native-debug
	npm run build:js
	scripts/with-postgres npx playwright test -c e2e/playwright.config.ts

# A short libFuzzer run over the restore path and the snapshot file reader on
# their seed corpora, 30 s shared between them (make fuzz: 5 minutes).
test-fuzz: build-native-fuzz
	scripts/run-fuzz 30

# keepstate in a C++ team's own CMake project (tests/consumer): a fresh clone
# added with add_subdirectory, built with g++ and clang, Debug and Release,
# and as a custom wasm module.
test-consumer: setup
	scripts/check-consumer

test: test-cxx test-fuzz test-js test-conformance test-e2e test-consumer

# The crash test of e2e/specs/crash.spec.ts with $(STRESS_KILLS) browser kills
# (random moments, every kill mode) instead of make test's 50 (25 in Firefox),
# in Chromium and in Firefox, and the torn-log recipe (Chromium); prints the
# kills by mode, acknowledged commits lost and silent resets (both must be 0),
# and recoveries from the OPFS copy.
STRESS_KILLS ?= 500
stress: build-wasm-release
	npm run build:js
	@mkdir -p build; status=0; \
	KEEPSTATE_CRASH_ITERATIONS=$(STRESS_KILLS) npx playwright test -c e2e/playwright.config.ts \
	  --global-timeout $$(( $(STRESS_KILLS) * 2 * 8000 + 600000 )) crash dataloss > build/stress.log 2>&1 || status=$$?; \
	grep -E '✓|✘|passed|failed|flaky' build/stress.log; \
	grep -o 'crash test (seed [0-9]*): .*' build/stress.log | sed 's/"versions":"[^"]*",\{0,1\}//'; \
	[ $$status -eq 0 ] || { tail -60 build/stress.log; echo "stress: FAILED (full log: build/stress.log)"; }; exit $$status

# Benchmarks, native and wasm under Node, then the browser benchmark and the
# sync benchmark, in one run; tables + JSON in bench/results/.
bench: build-native-release build-wasm-release
	scripts/run-bench
	$(MAKE) --no-print-directory bench-browser
	$(MAKE) --no-print-directory bench-sync

# The sync benchmark (bench/sync/): the ledger's sync server (native-release)
# on SQLite and on a throwaway PostgreSQL cluster (fsync on: every push is
# durable before it is answered), Node devices with fake-indexeddb; then
# figure 1 again with two headless Chromium profiles as the devices
# (browser.mjs). Tables on stdout, JSON in bench/results/sync*.json.
# BENCH_ARGS=--quick: smaller.
bench-sync: build-native-release build-wasm-release
	npm run build:js
	KEEPSTATE_POSTGRES_FSYNC=on scripts/with-postgres node bench/sync/run.mjs $(BENCH_ARGS)
	node bench/sync/browser.mjs

# The browser benchmark (bench/browser/): keepstate against IDBFS, Dexie,
# wa-sqlite, a JS Map and raw IndexedDB in headless Chromium (persistent
# profiles), then (peers.mjs) against SQLite WASM, PGlite and Replicache,
# what a durable small commit can cost (opfs.mjs) and the pool of read
# replicas (pool.mjs); tables on stdout, JSON + SVG charts in bench/results/.
# BENCH_ARGS=--quick: 16/64 MiB states, 3 runs per figure.
bench-browser: build-wasm-release
	npm run build:js
	node bench/browser/run.mjs $(BENCH_ARGS)
	node bench/browser/tabs.mjs $(BENCH_ARGS)
	node bench/browser/files.mjs
	node bench/browser/seat.mjs $(BENCH_ARGS)
	node bench/browser/peers.mjs $(BENCH_ARGS)
	node bench/browser/opfs.mjs
	node bench/browser/pool.mjs $(BENCH_ARGS)

# The ledger demo (e2e/demo.mjs): builds the wasm modules and the package,
# serves e2e/app/ on 127.0.0.1, drives it in headless Chromium (create
# accounts, 1M transfers as C++ fibers, commit, close, relaunch, verify) and
# prints a summary; screenshots and JSON in build/demo/.
demo: build-wasm-release build-native-release
	npm run build:js
	node e2e/demo.mjs

# The demo page for a normal browser: http://127.0.0.1:$(PORT)/
PORT ?= 8080
serve: build-wasm-release
	npm run build:js
	node e2e/server.mjs --port $(PORT)

# make fuzz: the libFuzzer targets for 5 minutes, then the API fuzzer
# (js-bindings/test/fuzz-api.mjs) for $(API_FUZZ_SECONDS) s over the memory
# backend and fake-indexeddb (make test gives it 60 s, inside test-js).
API_FUZZ_SECONDS ?= 300
fuzz: build-native-fuzz build-wasm-release
	scripts/run-fuzz 300
	npm run build:js
	KEEPSTATE_FUZZ_SECONDS=$(API_FUZZ_SECONDS) node --test js-bindings/test/fuzz-api.test.mjs

clean:
	rm -rf build
