// See page_buffer.h.
#include "keepstate/engine/page_buffer.h"

#include <cstdlib>

#if defined(__linux__) && !defined(__EMSCRIPTEN__)
#include <sys/mman.h>
#endif

namespace keepstate::engine {

void PageBufferFree::operator()(std::uint8_t* p) const { std::free(p); }

PageBuffer AllocatePageBuffer(std::size_t bytes) {
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
