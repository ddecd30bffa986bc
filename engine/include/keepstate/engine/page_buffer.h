// PageBuffer: a large, uninitialised, page-aligned byte buffer for page
// images — the arena's memory and persistence's commit staging.
//
// Natively (Linux) buffers of 2 MiB and more are 2 MiB-aligned and ask for
// transparent huge pages: random lookups over tens of MiB otherwise spend
// much of their time in TLB misses, and filling a fresh 256 MiB staging
// buffer otherwise takes 65,536 page faults. In wasm, linear memory has no
// such costs and this is a 64-byte-aligned allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace keepstate::engine {

struct PageBufferFree {
  void operator()(std::uint8_t* p) const;
};
using PageBuffer = std::unique_ptr<std::uint8_t[], PageBufferFree>;

// At least `bytes` bytes (not zeroed), or nullptr if memory is exhausted.
PageBuffer AllocatePageBuffer(std::size_t bytes);

}  // namespace keepstate::engine
