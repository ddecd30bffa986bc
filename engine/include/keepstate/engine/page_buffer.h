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

// At least `bytes` bytes (not zeroed), or nullptr if memory is exhausted or
// `bytes` is above the cap (SetMaxPageBufferBytes): the caller reports
// OutOfSpace and changes nothing, where a failed operator new would abort
// the process (-fno-exceptions).
PageBuffer AllocatePageBuffer(std::size_t bytes);

// Caps the size of one page buffer (the arena, a commit's staging, a
// restore's image); 0: no cap but the platform's. A larger request fails
// before anything is allocated, as exhausted memory does. In wasm the
// platform's cap is the 2 GiB of linear memory. Process-wide, for memory
// budgets and for testing the out-of-memory paths.
void SetMaxPageBufferBytes(std::size_t bytes);
std::size_t MaxPageBufferBytes();

}  // namespace keepstate::engine
