// The yield ring of bench_scheduler, built on stackful Emscripten fibers
// (emscripten_fiber_swap, -sASYNCIFY): what keepstate would cost with
// Asyncify instead of stackless coroutines. Each fiber does `kRounds`
// iterations of "count, then switch straight to the next fiber", so one
// yield is exactly one swap (no central scheduler: the cheapest possible
// Asyncify ring). Prints `asyncify_yields_per_sec=<n>` for run.sh and writes
// JSON with --json <file>.
#include <emscripten/fiber.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr int kFibers = 1000;
constexpr int kRounds = 2000;
constexpr std::size_t kCStack = 16 * 1024;
constexpr std::size_t kAsyncifyStack = 4 * 1024;

emscripten_fiber_t main_fiber;
std::vector<emscripten_fiber_t> fibers(kFibers);
long long switches = 0;

void Body(void* arg) {
  const int i = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
  emscripten_fiber_t* self = &fibers[i];
  emscripten_fiber_t* next = &fibers[(i + 1) % kFibers];
  for (int r = 0; r < kRounds; ++r) {
    ++switches;
    emscripten_fiber_swap(self, next);
  }
  // Fiber 0 is the first to finish (after every fiber did kRounds swaps).
  emscripten_fiber_swap(self, &main_fiber);
  std::abort();  // never resumed
}

}  // namespace

int main(int argc, char** argv) {
  const char* json = nullptr;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--json") == 0) json = argv[i + 1];

  static char main_asyncify[kAsyncifyStack];
  emscripten_fiber_init_from_current_context(&main_fiber, main_asyncify, sizeof main_asyncify);
  std::vector<char*> stacks;
  for (int i = 0; i < kFibers; ++i) {
    char* c_stack = static_cast<char*>(std::malloc(kCStack));
    char* a_stack = static_cast<char*>(std::malloc(kAsyncifyStack));
    stacks.push_back(c_stack);
    stacks.push_back(a_stack);
    emscripten_fiber_init(&fibers[i], Body, reinterpret_cast<void*>(static_cast<std::intptr_t>(i)),
                          c_stack, kCStack, a_stack, kAsyncifyStack);
  }
  const auto start = std::chrono::steady_clock::now();
  emscripten_fiber_swap(&main_fiber, &fibers[0]);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double per_sec = static_cast<double>(switches) / seconds;
  std::printf("\nAsyncify fiber ring (emscripten_fiber_swap) — wasm (em++ 3.1.6, Node)\n");
  std::printf("%-52s %16.0f  yields/s  (%d fibers, %lld switches, %.3f s)\n",
              "yield ring, Asyncify fibers", per_sec, kFibers, switches, seconds);
  std::printf("%-52s %16.0f  bytes     (C stack + Asyncify stack, fixed per fiber)\n",
              "memory per suspended Asyncify fiber", double(kCStack + kAsyncifyStack));
  std::printf("asyncify_yields_per_sec=%.0f\n", per_sec);
  if (json != nullptr) {
    if (std::FILE* f = std::fopen(json, "w")) {
      std::fprintf(f,
                   "{\"title\": \"Asyncify fiber ring\", \"platform\": \"wasm (em++ 3.1.6, Node)\", "
                   "\"rows\": [\n  {\"name\": \"yield ring, Asyncify fibers\", \"value\": %.6g, "
                   "\"unit\": \"yields/s\", \"note\": \"%d fibers\"}\n]}\n",
                   per_sec, kFibers);
      std::fclose(f);
    }
  }
  for (char* p : stacks) std::free(p);
  return 0;
}
