// Arena: pages, superblock, free list, dirty bits, journal, image round trip.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "keepstate/engine/arena.h"
#include "keepstate/engine/store.h"

using namespace keepstate;
using namespace keepstate::engine;

TEST_CASE("arena rejects page sizes that are not powers of two in range", "[engine]") {
  for (std::uint32_t bad : {0u, 1024u, 2048u, 5000u, 131072u}) {
    auto a = Arena::Create(bad);
    CHECK(a.status().code() == Code::kInvalidArgument);
  }
  for (std::uint32_t good : {4096u, 8192u, 16384u, 32768u, 65536u}) {
    auto a = Arena::Create(good);
    REQUIRE(a.ok());
    CHECK(a->page_size() == good);
    CHECK(a->page_count() == 1);
  }
}

TEST_CASE("arena superblock records magic, format, page size and count", "[engine]") {
  auto a = Arena::Create(8192).value();
  Superblock sb = a.superblock();
  CHECK(sb.magic == kArenaMagic);
  CHECK(sb.format_version == kArenaFormatVersion);
  CHECK(sb.page_size == 8192);
  CHECK(sb.page_count == 1);
  CHECK(sb.root == kNoPage);
  PageId p = a.Allocate().value();
  CHECK(p == 1);
  CHECK(a.superblock().page_count == 2);
}

TEST_CASE("freed pages are reused before the arena grows", "[engine]") {
  auto a = Arena::Create().value();
  std::vector<PageId> pages;
  for (int i = 0; i < 10; ++i) pages.push_back(a.Allocate().value());
  CHECK(a.page_count() == 11);
  a.Free(pages[3]);
  a.Free(pages[7]);
  CHECK(a.free_count() == 2);
  CHECK(a.FreePages() == std::vector<PageId>{pages[7], pages[3]});
  PageId r1 = a.Allocate().value();
  PageId r2 = a.Allocate().value();
  CHECK(r1 == pages[7]);
  CHECK(r2 == pages[3]);
  CHECK(a.page_count() == 11);
  // A reused page comes back zeroed.
  const std::uint8_t* p = a.Read(r1);
  for (std::uint32_t i = 0; i < a.page_size(); ++i) REQUIRE(p[i] == 0);
}

TEST_CASE("every Write marks its page dirty — ClearDirty clears only the given pages", "[engine]") {
  auto a = Arena::Create().value();
  for (int i = 0; i < 100; ++i) a.Allocate().value();
  a.ClearAllDirty();
  CHECK(a.DirtyPages().empty());
  a.Write(5)[0] = 1;
  a.Write(64)[0] = 1;
  a.Write(99)[10] = 2;
  CHECK(a.DirtyPages() == std::vector<PageId>{5, 64, 99});
  CHECK(a.dirty().Count() == 3);
  const PageId clear[] = {5, 99};
  a.ClearDirty(clear);
  CHECK(a.DirtyPages() == std::vector<PageId>{64});
  a.MarkDirty(clear);
  CHECK(a.DirtyPages() == std::vector<PageId>{5, 64, 99});
  // Reading never dirties.
  a.ClearAllDirty();
  volatile std::uint8_t sink = a.Read(7)[0];
  (void)sink;
  CHECK(a.DirtyPages().empty());
}

TEST_CASE("arena image round trip restores every byte, all pages clean", "[engine]") {
  auto a = Arena::Create().value();
  for (int i = 0; i < 50; ++i) {
    PageId p = a.Allocate().value();
    std::memset(a.Write(p), i + 1, a.page_size());
  }
  a.Free(10);
  std::vector<std::uint8_t> image(a.bytes().begin(), a.bytes().end());
  auto b = Arena::FromImage(image, 4096);
  REQUIRE(b.ok());
  CHECK(b->page_count() == a.page_count());
  CHECK(std::memcmp(b->bytes().data(), a.bytes().data(), a.size_bytes()) == 0);
  CHECK(b->DirtyPages().empty());
  CHECK(b->FreePages() == std::vector<PageId>{10});
}

TEST_CASE("arena image validation reports corruption by field", "[engine]") {
  auto a = Arena::Create().value();
  for (int i = 0; i < 4; ++i) a.Allocate().value();
  std::vector<std::uint8_t> good(a.bytes().begin(), a.bytes().end());

  auto expect = [](std::vector<std::uint8_t> img, std::uint32_t ps, Code code, const char* word) {
    auto r = Arena::FromImage(std::move(img), ps);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == code);
    CHECK_THAT(r.status().message(), Catch::Contains(word));
  };
  {
    auto img = good;
    img[0] ^= 1;
    expect(img, 4096, Code::kCorruption, "magic");
  }
  {
    auto img = good;
    std::uint32_t v = kArenaFormatVersion + 1;
    std::memcpy(img.data() + 8, &v, 4);
    expect(img, 4096, Code::kUnsupported, "newer");
  }
  expect(good, 8192, Code::kCorruption, "not a whole number");
  {
    auto img = good;
    img.resize(img.size() - 4096);
    expect(img, 4096, Code::kCorruption, "page count");
  }
  {
    auto img = good;
    std::uint32_t v = 8192;
    std::memcpy(img.data() + 12, &v, 4);
    expect(img, 4096, Code::kCorruption, "page size");
  }
  {
    auto img = good;
    std::uint32_t v = 4;  // free_head = 4 but free_count = 0 and page 4 not linked
    std::memcpy(img.data() + 24, &v, 4);
    expect(img, 4096, Code::kCorruption, "free list");
  }
  expect({}, 4096, Code::kCorruption, "whole number");
}

TEST_CASE("journal rollback restores bytes, page count, free list and dirty bits", "[engine]") {
  auto a = Arena::Create().value();
  for (int i = 0; i < 20; ++i) std::memset(a.Write(a.Allocate().value()), i, 4096);
  a.Free(3);
  a.ClearAllDirty();
  a.Write(2)[0] = 0xAA;  // dirty before the journal
  std::vector<std::uint8_t> before(a.bytes().begin(), a.bytes().end());
  const auto dirty_before = a.DirtyPages();

  a.BeginJournal();
  for (int i = 0; i < 30; ++i) a.Allocate().value();  // reuses 3, then grows
  a.Write(5)[100] = 1;
  a.Free(7);
  a.RollbackJournal();

  CHECK(a.page_count() == before.size() / 4096);
  CHECK(std::memcmp(a.bytes().data(), before.data(), before.size()) == 0);
  CHECK(a.DirtyPages() == dirty_before);
  CHECK(a.FreePages() == std::vector<PageId>{3});
}

namespace {

// Caps page buffers for one scope (AllocatePageBuffer fails above it, as
// exhausted memory does).
struct PageBufferCap {
  explicit PageBufferCap(std::size_t bytes) { SetMaxPageBufferBytes(bytes); }
  ~PageBufferCap() { SetMaxPageBufferBytes(0); }
};

}  // namespace

TEST_CASE("out of memory: a failed grow is OutOfSpace and leaves the arena as it was", "[engine]") {
  auto a = Arena::Create().value();  // room for 16 pages
  for (int i = 0; i < 15; ++i) REQUIRE(a.Allocate().ok());
  a.Write(3)[9] = 7;
  const std::vector<std::uint8_t> bytes(a.bytes().begin(), a.bytes().end());
  const std::vector<PageId> dirty = a.DirtyPages();
  {
    PageBufferCap cap(16 * 4096);  // no buffer larger than the one it has
    CHECK(a.Allocate().status().code() == Code::kOutOfSpace);
    CHECK(a.Reserve(100).code() == Code::kOutOfSpace);
    CHECK(a.page_count() == 16);
    CHECK(std::vector<std::uint8_t>(a.bytes().begin(), a.bytes().end()) == bytes);
    CHECK(a.DirtyPages() == dirty);
    // Still usable: pages it has are written and freed as before.
    a.Free(5);
    CHECK(a.Allocate().value() == 5);
  }
  // With memory back, it grows and keeps every byte and dirty bit.
  const PageId grown = a.Allocate().value();
  CHECK(grown == 16);
  CHECK(a.page_count() == 17);
  CHECK(a.Read(3)[9] == 7);
  CHECK(a.dirty().Test(grown));
  CHECK(a.dirty().Test(3));
}

namespace {

// A memory of `bytes` for page buffers for one scope (SetPageBufferBudget),
// and a spill hook that holds a buffer's bytes in a vector meanwhile,
// counting its saves (js-bindings holds them in a JS ArrayBuffer).
struct SpillMemory {
  static inline std::vector<std::uint8_t> held;
  static inline int saves = 0;
  static inline bool refuse = false;
  static constexpr PageBufferSpill kSpill{
      [](const std::uint8_t* bytes, std::size_t n) {
        if (refuse) return false;
        ++saves;
        held.assign(bytes, bytes + n);
        return true;
      },
      [](std::uint8_t* to) {
        std::memcpy(to, held.data(), held.size());
        held.clear();
      }};
  explicit SpillMemory(std::size_t bytes) {
    SetPageBufferBudget(bytes);
    SetPageBufferSpill(&kSpill);
    saves = 0;
    refuse = false;
  }
  ~SpillMemory() {
    SetPageBufferBudget(0);
    SetPageBufferSpill(nullptr);
  }
};

}  // namespace

TEST_CASE("growth where the old and the new buffer do not fit together goes through a spill and keeps every byte",
          "[engine]") {
  auto a = Arena::Create().value();  // 16 pages
  for (int i = 0; i < 999; ++i) REQUIRE(a.Allocate().ok());
  for (PageId p = 0; p < 1000; p += 7) a.Write(p)[100] = static_cast<std::uint8_t>(p);
  const std::vector<std::uint8_t> bytes(a.bytes().begin(), a.bytes().end());
  const std::vector<PageId> dirty = a.DirtyPages();
  const std::uint32_t capacity = a.capacity_pages();
  {
    // Room for the next buffer (half again as large) alone: growing by a copy needs both.
    SpillMemory memory(std::size_t{capacity + capacity / 2} * 4096);
    while (a.page_count() < capacity) REQUIRE(a.Allocate().ok());
    CHECK(SpillMemory::saves == 0);
    const PageId grown = a.Allocate().value();
    CHECK(SpillMemory::saves == 1);
    CHECK(a.capacity_pages() == capacity + capacity / 2);
    // Every page but the superblock (its page count changed) as it was.
    CHECK(std::memcmp(a.bytes().data() + 4096, bytes.data() + 4096, bytes.size() - 4096) == 0);
    CHECK(a.dirty().Test(grown));
    for (PageId p : dirty) CHECK(a.dirty().Test(p));
  }
}

TEST_CASE("out of memory: a growth that fails even through a spill leaves the arena as it was", "[engine]") {
  auto a = Arena::Create().value();
  for (int i = 0; i < 15; ++i) REQUIRE(a.Allocate().ok());
  a.Write(3)[9] = 7;
  const std::vector<std::uint8_t> bytes(a.bytes().begin(), a.bytes().end());
  {
    SpillMemory memory(20 * 4096);  // the 16 pages it has and 4 more
    CHECK(a.Allocate().status().code() == Code::kOutOfSpace);
    CHECK(SpillMemory::saves == 1);  // tried: freed, no room for 24 pages, taken back
    CHECK(a.capacity_pages() == 16);
    CHECK(std::vector<std::uint8_t>(a.bytes().begin(), a.bytes().end()) == bytes);
    SpillMemory::refuse = true;  // no room outside either: nothing is freed
    CHECK(a.Reserve(100).code() == Code::kOutOfSpace);
    CHECK(std::vector<std::uint8_t>(a.bytes().begin(), a.bytes().end()) == bytes);
    a.Free(5);
    CHECK(a.Allocate().value() == 5);
  }
}

TEST_CASE("out of memory: a put that cannot grow the arena changes nothing and the store stays usable",
          "[engine]") {
  auto s = Store::Create().value();
  REQUIRE(s->Put("a", "1").ok());
  const std::vector<std::uint8_t> bytes(s->arena().bytes().begin(), s->arena().bytes().end());
  {
    PageBufferCap cap(64 * 4096);
    CHECK(s->Put("big", std::string(1u << 20, 'x')).code() == Code::kOutOfSpace);
    CHECK(std::vector<std::uint8_t>(s->arena().bytes().begin(), s->arena().bytes().end()) == bytes);
    CHECK(s->Put("b", "2").ok());
  }
  REQUIRE(s->Put("big", std::string(1u << 20, 'x')).ok());
  CHECK(s->Count() == 3);
  CHECK(s->tree().Check().ok());
}
