// See page_buffer.h.
#include "keepstate/engine/page_buffer.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#if defined(__linux__) && !defined(__EMSCRIPTEN__)
#include <sys/mman.h>
#endif

namespace keepstate::engine {

namespace {

#ifdef __EMSCRIPTEN__
// Linear memory goes up to 4 GiB (-sMAXIMUM_MEMORY=4GB), but dlmalloc gives
// no single block of 2 GiB or more (its sizes are signed on wasm32): asking
// for one only fails later.
constexpr std::size_t kPlatformMax = std::size_t{0x7FFFFFFF};
#else
constexpr std::size_t kPlatformMax = ~std::size_t{0};
#endif

std::size_t g_max_bytes = 0;
std::size_t g_budget = 0;
std::atomic<std::size_t> g_live{0};  // bytes of the page buffers alive (the server commits on another thread)
const PageBufferSpill* g_spill = nullptr;

}  // namespace

void PageBufferFree::operator()(std::uint8_t* p) const {
  if (p == nullptr) return;
  g_live -= bytes;
  std::free(p);
}

void SetPageBufferBudget(std::size_t bytes) { g_budget = bytes; }

void SetMaxPageBufferBytes(std::size_t bytes) { g_max_bytes = bytes; }
std::size_t MaxPageBufferBytes() { return g_max_bytes != 0 ? g_max_bytes : kPlatformMax; }

void SetPageBufferSpill(const PageBufferSpill* spill) { g_spill = spill; }
const PageBufferSpill* GetPageBufferSpill() { return g_spill; }

PageBuffer AllocatePageBuffer(std::size_t bytes) {
  // Rounded up below by at most 2 MiB: leave room so that never wraps.
  if (bytes > MaxPageBufferBytes() || bytes > kPlatformMax - (std::size_t{4} << 20)) return nullptr;
  if (g_budget != 0 && bytes > g_budget - std::min(g_budget, g_live.load())) return nullptr;
  void* p;
#if defined(__linux__) && !defined(__EMSCRIPTEN__)
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  if (bytes >= kHuge) {
    const std::size_t rounded = (bytes + kHuge - 1) & ~(kHuge - 1);
    p = std::aligned_alloc(kHuge, rounded);
    if (p != nullptr) madvise(p, rounded, MADV_HUGEPAGE);
  } else
#endif
  {
    // 64-byte alignment: cache lines, and every page boundary is aligned too.
    p = std::aligned_alloc(64, (bytes + 63) & ~std::size_t{63});
  }
  if (p == nullptr) return nullptr;
  g_live += bytes;
  return PageBuffer(static_cast<std::uint8_t*>(p), PageBufferFree{bytes});
}

}  // namespace keepstate::engine
