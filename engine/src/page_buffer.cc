// See page_buffer.h.
#include "keepstate/engine/page_buffer.h"

#include <cstdlib>

#if defined(__linux__) && !defined(__EMSCRIPTEN__)
#include <sys/mman.h>
#endif

namespace keepstate::engine {

namespace {

#ifdef __EMSCRIPTEN__
// -sMAXIMUM_MEMORY=2GB: no buffer of 2 GiB or more can exist, and asking
// malloc for one only fails later.
constexpr std::size_t kPlatformMax = std::size_t{0x7FFFFFFF};
#else
constexpr std::size_t kPlatformMax = ~std::size_t{0};
#endif

std::size_t g_max_bytes = 0;

}  // namespace

void PageBufferFree::operator()(std::uint8_t* p) const { std::free(p); }

void SetMaxPageBufferBytes(std::size_t bytes) { g_max_bytes = bytes; }
std::size_t MaxPageBufferBytes() { return g_max_bytes != 0 ? g_max_bytes : kPlatformMax; }

PageBuffer AllocatePageBuffer(std::size_t bytes) {
  // Rounded up below by at most 2 MiB: leave room so that never wraps.
  if (bytes > MaxPageBufferBytes() || bytes > kPlatformMax - (std::size_t{4} << 20)) return nullptr;
#if defined(__linux__) && !defined(__EMSCRIPTEN__)
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  if (bytes >= kHuge) {
    const std::size_t rounded = (bytes + kHuge - 1) & ~(kHuge - 1);
    void* p = std::aligned_alloc(kHuge, rounded);
    if (p != nullptr) madvise(p, rounded, MADV_HUGEPAGE);
    return PageBuffer(static_cast<std::uint8_t*>(p));
  }
#endif
  // 64-byte alignment: cache lines, and every page boundary is aligned too.
  return PageBuffer(static_cast<std::uint8_t*>(std::aligned_alloc(64, (bytes + 63) & ~std::size_t{63})));
}

}  // namespace keepstate::engine
