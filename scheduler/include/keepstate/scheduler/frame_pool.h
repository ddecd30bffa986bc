// FramePool: the size-classed allocator behind every coroutine frame.
//
// Every Task's promise routes operator new/delete here, so fiber frames live
// in pooled slabs of linear memory instead of going through malloc each time.
// Frames are rounded up to a 16-byte size class; each class keeps a LIFO free
// list threaded through its free blocks and carves new blocks from 64 KiB
// slabs. After warm-up (once the free lists hold as many blocks as the peak
// number of live frames), allocating and freeing a frame never calls malloc.
// Frames larger than kMaxPooledSize go straight to malloc (they are rare:
// big locals should live on the heap or in the arena).
//
// Slabs are never returned to the system: the pool keeps its peak footprint.
//
// Thread safety: none. keepstate runs single-threaded (wasm main thread or a
// Worker); every scheduler in a process shares this one pool.
//
// Under AddressSanitizer, free blocks are poisoned so that a use of a freed
// frame is reported as it would be with malloc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace keepstate::scheduler {

struct FramePoolStats {
  // Frames allocated and not yet freed (pooled and large).
  std::size_t live_frames = 0;
  // Bytes those live frames occupy, each rounded up to its 16-byte class. This is the linear memory a suspended
  // fiber costs (slab slack excluded).
  std::size_t live_bytes = 0;
  // Bytes the compiler asked for, summed over live frames (<= live_bytes).
  std::size_t requested_bytes = 0;
  // Bytes obtained from malloc and still held (slabs + live large frames).
  std::size_t reserved_bytes = 0;
  // Number of malloc calls the pool has made since the process started
  // (slab refills and large frames). Flat after warm-up.
  std::uint64_t system_allocations = 0;
};

class FramePool {
 public:
  static constexpr std::size_t kGranule = 16;
  static constexpr std::size_t kMaxPooledSize = 1024;
  static constexpr std::size_t kSlabBytes = 64 * 1024;

  // Returns storage for a coroutine frame of `size` bytes, 16-byte aligned.
  // Aborts with a message if memory is exhausted (library code has no
  // exceptions, and a half-created fiber cannot report a Status).
  static void* Allocate(std::size_t size);
  // REQUIRES: `p` came from Allocate(size) with the same size.
  static void Free(void* p, std::size_t size) noexcept;

  // The bytes a frame of `size` bytes really occupies.
  // Pooled and large frames alike are rounded up to kGranule.
  static constexpr std::size_t ClassSize(std::size_t size) {
    return (size + kGranule - 1) / kGranule * kGranule;
  }

  static FramePoolStats Stats();
};

}  // namespace keepstate::scheduler
