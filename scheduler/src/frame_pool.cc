// FramePool implementation: per-class LIFO free lists over bump-allocated
// slabs. See frame_pool.h for the contract.
#include "keepstate/scheduler/frame_pool.h"

#include <cstdio>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#define KEEPSTATE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KEEPSTATE_ASAN 1
#endif
#endif

#ifdef KEEPSTATE_ASAN
#include <sanitizer/asan_interface.h>
#define KEEPSTATE_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define KEEPSTATE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define KEEPSTATE_POISON(p, n) ((void)(p), (void)(n))
#define KEEPSTATE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace keepstate::scheduler {
namespace {

constexpr std::size_t kClasses = FramePool::kMaxPooledSize / FramePool::kGranule + 1;

// Each slab starts with a header linking all slabs, so they stay reachable
// (LeakSanitizer) and can be accounted; blocks follow it.
struct SlabHeader {
  SlabHeader* next;
};
constexpr std::size_t kSlabHeaderBytes = FramePool::kGranule;
static_assert(sizeof(SlabHeader) <= kSlabHeaderBytes, "header fits in one granule");

struct FreeBlock {
  FreeBlock* next;
};

struct SizeClass {
  FreeBlock* free = nullptr;  // LIFO: the most recently freed block is warm
  char* bump = nullptr;       // unused tail of this class's current slab
  char* bump_end = nullptr;
};

struct PoolState {
  SizeClass classes[kClasses];
  SlabHeader* slabs = nullptr;
  FramePoolStats stats;
};

PoolState& State() {
  static PoolState state;  // constant-initialised, never destroyed early
  return state;
}

[[noreturn]] void OutOfMemory(std::size_t size) {
  std::fprintf(stderr, "keepstate: out of memory allocating a %zu-byte fiber frame\n", size);
  std::abort();
}

}  // namespace

void* FramePool::Allocate(std::size_t size) {
  PoolState& s = State();
  if (size > kMaxPooledSize) {
    // aligned_alloc needs a multiple of the alignment (Emscripten's
    // dlmalloc returns null otherwise; glibc is lenient).
    const std::size_t bytes = ClassSize(size);
    void* p = std::aligned_alloc(kGranule, bytes);
    if (p == nullptr) OutOfMemory(size);
    ++s.stats.system_allocations;
    s.stats.reserved_bytes += bytes;
    ++s.stats.live_frames;
    s.stats.live_bytes += bytes;
    s.stats.requested_bytes += size;
    return p;
  }
  const std::size_t bytes = ClassSize(size == 0 ? 1 : size);
  SizeClass& c = s.classes[bytes / kGranule];
  void* p;
  if (c.free != nullptr) {
    FreeBlock* b = c.free;
    KEEPSTATE_UNPOISON(b, bytes);
    c.free = b->next;
    p = b;
  } else {
    if (c.bump + bytes > c.bump_end || c.bump == nullptr) {
      // The slab's tail (< bytes) is abandoned: at most one block per 64 KiB.
      char* slab = static_cast<char*>(std::aligned_alloc(kGranule, kSlabBytes));
      if (slab == nullptr) OutOfMemory(size);
      auto* header = reinterpret_cast<SlabHeader*>(slab);
      header->next = s.slabs;
      s.slabs = header;
      KEEPSTATE_POISON(slab + kSlabHeaderBytes, kSlabBytes - kSlabHeaderBytes);
      ++s.stats.system_allocations;
      s.stats.reserved_bytes += kSlabBytes;
      c.bump = slab + kSlabHeaderBytes;
      c.bump_end = slab + kSlabBytes;
    }
    p = c.bump;
    c.bump += bytes;
    KEEPSTATE_UNPOISON(p, bytes);
  }
  ++s.stats.live_frames;
  s.stats.live_bytes += bytes;
  s.stats.requested_bytes += size;
  return p;
}

void FramePool::Free(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  PoolState& s = State();
  --s.stats.live_frames;
  s.stats.requested_bytes -= size;
  if (size > kMaxPooledSize) {
    s.stats.live_bytes -= ClassSize(size);
    s.stats.reserved_bytes -= ClassSize(size);
    std::free(p);
    return;
  }
  const std::size_t bytes = ClassSize(size == 0 ? 1 : size);
  s.stats.live_bytes -= bytes;
  SizeClass& c = s.classes[bytes / kGranule];
  auto* b = static_cast<FreeBlock*>(p);
  b->next = c.free;
  c.free = b;
  KEEPSTATE_POISON(b, bytes);
}

FramePoolStats FramePool::Stats() { return State().stats; }

}  // namespace keepstate::scheduler
