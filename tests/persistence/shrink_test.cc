// Storage that shrinks: deleting a large value writes what changed (its freed
// pages are blank: stored in the manifest alone), the arena returns the pages
// it no longer needs, and the stored records and the snapshot file follow the
// live data, after the commit and after a reopen.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "keepstate/engine/store.h"
#include "keepstate/persistence/session.h"
#include "keepstate/persistence/snapshot_file.h"

namespace keepstate::persistence {
namespace {

// Head, manifests and the B+tree's inner pages: what a state costs beyond
// twice its live pages.
constexpr std::uint64_t kFixedOverhead = 64 << 10;

PersisterOptions Options(std::uint32_t retain_versions) {
  PersisterOptions o;
  o.store_id = 9;
  o.writer_id = 1;
  o.retain_versions = retain_versions;
  return o;
}

struct Open {
  StoreSession session;
  std::unique_ptr<engine::Store> store;
};

Open OpenStore(MemoryRecordStore& records, PersisterOptions options) {
  StoreSession session(options);
  OpenReport report;
  Result<engine::Arena> arena = session.Open(records, &report);
  REQUIRE(arena.ok());
  Result<std::unique_ptr<engine::Store>> store = engine::Store::FromArena(std::move(*arena), true);
  REQUIRE(store.ok());
  return {std::move(session), std::move(*store)};
}

// Commits and returns the bytes the commit put.
std::uint64_t Commit(Open& o, MemoryRecordStore& records, std::uint64_t now) {
  const Status captured = o.session.Capture(o.store->arena(), now);
  INFO(captured.ToString());
  REQUIRE(captured.ok());
  std::uint64_t written = 0;
  for (const Record& r : o.session.plan()->puts()) written += r.bytes.size();
  const Status applied = records.Apply(o.session.batch());
  o.session.CommitDone(applied, o.store->arena());
  REQUIRE(applied.ok());
  return written;
}

std::uint64_t LiveBytes(const engine::Arena& a) {
  return std::uint64_t{a.page_count() - a.free_count()} * a.page_size();
}

std::uint64_t ExportSize(const engine::Arena& a) {
  Result<std::vector<std::uint8_t>> file = EncodeSnapshotFile(a, {});
  REQUIRE(file.ok());
  return file->size();
}

std::string Value(std::size_t size, std::uint32_t seed) {
  std::string v(size, '\0');
  for (std::size_t i = 0; i < size; ++i) v[i] = static_cast<char>((i * 2654435761u + seed) >> 13);
  return v;
}

}  // namespace

TEST_CASE("shrink: deleting an 8 MiB value writes little, and stored bytes and the export follow the live data",
          "[persistence]") {
  for (std::uint32_t retain : {1u, 2u}) {
    INFO("retain_versions " << retain);
    MemoryRecordStore records;
    Open o = OpenStore(records, Options(retain));
    REQUIRE(o.store->Put("a", "1").ok());
    REQUIRE(o.store->Put("b", "2").ok());
    REQUIRE(o.store->Put("big", Value(8u << 20, 1)).ok());
    CHECK(Commit(o, records, 1) > (8u << 20));
    REQUIRE(o.store->Delete("big").value());
    const std::uint64_t written = Commit(o, records, 2);
    CHECK(written < 32 * 1024);  // was 8.5 MB: every freed page in full
    const std::uint64_t live = LiveBytes(o.store->arena());
    CHECK(live <= 2 * 4096);
    CHECK(ExportSize(o.store->arena()) <= 2 * live + kFixedOverhead);  // was 8,483,152 bytes
    CHECK(o.session.persister().current_pack_bytes() <= 2 * live);
    if (retain == 2) {
      // The previous version (with the value) stays restorable for fallback
      // until the next commit drops it.
      REQUIRE(o.store->Put("c", "3").ok());
      Commit(o, records, 3);
    }
    CHECK(records.StoredBytes() <= 2 * live + kFixedOverhead);

    Open again = OpenStore(records, Options(retain));
    CHECK(again.store->arena().page_count() == o.store->arena().page_count());
    CHECK(ExportSize(again.store->arena()) <= 2 * live + kFixedOverhead);
    CHECK(records.StoredBytes() <= 2 * live + kFixedOverhead);
    std::string v;
    CHECK(again.store->Get("a", &v).ok());
    CHECK(v == "1");
    CHECK(again.store->Get("big", &v).IsNotFound());
  }
}

TEST_CASE("shrink: freeing a value in the middle stores its pages as blank, and they restore", "[persistence]") {
  MemoryRecordStore records;
  Open o = OpenStore(records, Options(2));
  REQUIRE(o.store->Put("first", Value(2u << 20, 2)).ok());
  REQUIRE(o.store->Put("second", Value(3u << 20, 3)).ok());
  Commit(o, records, 1);
  const std::uint32_t pages = o.store->arena().page_count();
  // The first value's pages lie below the second's: they stay, free (fewer
  // than the live ones), and the commit writes none of their bytes.
  REQUIRE(o.store->Delete("first").value());
  CHECK(o.store->arena().page_count() == pages);
  CHECK(o.store->arena().free_count() >= 512);
  CHECK(Commit(o, records, 2) < 64 * 1024);
  Open again = OpenStore(records, Options(2));
  REQUIRE(again.store->arena().page_count() == pages);
  CHECK(std::equal(again.store->arena().bytes().begin(), again.store->arena().bytes().end(),
                   o.store->arena().bytes().begin()));
  // Deleting the second one leaves more free than live: the arena is compacted.
  REQUIRE(o.store->Delete("second").value());
  CHECK(o.store->arena().page_count() <= 3);
  Commit(o, records, 3);
  Commit(o, records, 4);  // drops the retained version that still held them
  const std::uint64_t live = LiveBytes(o.store->arena());
  CHECK(records.StoredBytes() <= 2 * live + kFixedOverhead);
  Open last = OpenStore(records, Options(2));
  CHECK(std::equal(last.store->arena().bytes().begin(), last.store->arena().bytes().end(),
                   o.store->arena().bytes().begin(), o.store->arena().bytes().end()));
}

}  // namespace keepstate::persistence
