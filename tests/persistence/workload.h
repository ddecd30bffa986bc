// A random arena workload for persistence tests: allocate, free and write
// pages so that a chosen fraction of the arena is dirty, as the B+tree would.
//
// Invariant: only allocated pages are written (a free page's first word is
// the free list link), and page 0 changes only through the Arena's own
// superblock updates, so every state the workload produces passes
// Arena::FromImage.
#pragma once

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <random>
#include <vector>

#include "keepstate/engine/arena.h"

namespace keepstate::persistence::testing {

class Workload {
 public:
  explicit Workload(std::uint64_t seed) : rng_(seed) {}

  // Grows the arena to at least `pages` pages (all allocated, random bytes).
  void Fill(engine::Arena& arena, std::uint32_t pages) {
    while (arena.page_count() < pages) {
      engine::PageId id = arena.Allocate().value();
      live_.push_back(id);
      Scribble(arena, id);
    }
  }

  // One step: writes about `fraction` of the pages (at least one), and now
  // and then allocates or frees a few.
  void Step(engine::Arena& arena, double fraction) {
    const std::uint32_t writes = std::max<std::uint32_t>(
        1, static_cast<std::uint32_t>(fraction * arena.page_count()));
    for (std::uint32_t i = 0; i < writes && !live_.empty(); ++i) {
      Scribble(arena, live_[rng_() % live_.size()]);
    }
    const std::uint32_t op = rng_() % 8;
    if (op == 0 && live_.size() > 4) {  // free a few
      for (int i = 0; i < 3; ++i) {
        const std::size_t k = rng_() % live_.size();
        arena.Free(live_[k]);
        live_[k] = live_.back();
        live_.pop_back();
      }
    } else if (op == 1) {  // allocate a few (reusing freed pages first)
      for (int i = 0; i < 4; ++i) {
        engine::PageId id = arena.Allocate().value();
        live_.push_back(id);
        Scribble(arena, id);
      }
    }
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  // Overwrites a random run of a page (whole page one time in four).
  void Scribble(engine::Arena& arena, engine::PageId id) {
    std::uint8_t* p = arena.Write(id);
    const std::uint32_t size = arena.page_size();
    std::uint32_t begin = 0, end = size;
    if (rng_() % 4 != 0) {
      begin = rng_() % size;
      end = begin + 1 + rng_() % (size - begin);
    }
    for (std::uint32_t i = begin; i < end; i += 8) {
      const std::uint64_t v = rng_();
      std::memcpy(p + i, &v, std::min<std::uint32_t>(8, end - i));
    }
  }

  std::mt19937_64 rng_;
  std::vector<engine::PageId> live_;
};

inline std::vector<std::uint8_t> Bytes(const engine::Arena& arena) {
  return {arena.bytes().begin(), arena.bytes().end()};
}

}  // namespace keepstate::persistence::testing
