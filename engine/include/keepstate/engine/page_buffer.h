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
  std::size_t bytes = 0;  // as allocated (the live total of SetPageBufferBudget)
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
// platform's cap is just under 2 GiB: the largest block malloc gives (of
// 4 GiB of linear memory). Process-wide, for memory
// budgets and for testing the out-of-memory paths.
void SetMaxPageBufferBytes(std::size_t bytes);
std::size_t MaxPageBufferBytes();

// Caps the bytes of all page buffers alive at once; 0: no cap. A request
// that would pass it fails as exhausted memory does, until buffers are freed:
// a memory of that size, for testing the paths that memory shared between
// buffers takes (the Arena's growth through a spill).
void SetPageBufferBudget(std::size_t bytes);

// Where a buffer's bytes can wait outside the process's memory while the
// buffer is freed and a larger one allocated, so that growing needs room for
// the new buffer only, not for both (the Arena grows this way when both do not
// fit). A platform hook: js-bindings sets one that holds the bytes in a JS
// ArrayBuffer, since wasm's linear memory never shrinks and the holes left by
// an arena's earlier buffers cannot hold its next one. None natively.
struct PageBufferSpill {
  // Copies `n` bytes out; false if there is no room for them outside either.
  bool (*save)(const std::uint8_t* bytes, std::size_t n);
  // Copies the saved bytes to `to` and forgets them. REQUIRES: a save.
  void (*load)(std::uint8_t* to);
};
void SetPageBufferSpill(const PageBufferSpill* spill);  // nullptr: none
const PageBufferSpill* GetPageBufferSpill();

}  // namespace keepstate::engine
