// Persister tests: incremental commits restore byte-equal to the live arena,
// stored bytes stay bounded under compaction and retention, failed and
// conflicting commits lose nothing.
#include <catch2/catch.hpp>

#include <bit>
#include <cstdio>
#include <set>
#include <string>

#include "keepstate/persistence/persister.h"
#include "keepstate/persistence/restore.h"
#include "workload.h"

namespace keepstate::persistence {
namespace {

using testing::Bytes;
using testing::Workload;

PersisterOptions SmallPacks() {
  PersisterOptions o;
  o.store_id = 7;
  o.writer_id = 0xA11CE;
  o.max_pack_bytes = 64 * 1024;  // 16 pages: many packs even in a small state
  return o;
}

// Restores the newest version and requires it to equal `live` exactly.
void RequireRestoresTo(MemoryRecordStore& store, const engine::Arena& live, std::uint64_t version) {
  RestoreOptions ro;
  ro.store_id = 7;
  Result<Restored> r = RestoreLatest(store, ro);
  REQUIRE(r.ok());
  CHECK(r->failures.empty());
  CHECK(r->manifest.version == version);
  REQUIRE(r->arena.page_count() == live.page_count());
  REQUIRE(Bytes(r->arena) == Bytes(live));
}

TEST_CASE("incremental commits restore byte-equal to the live arena", "[persistence]") {
  const std::uint64_t seed = GENERATE(1, 2, 3);
  INFO("seed " << seed);
  Workload w(seed);
  MemoryRecordStore store;
  PersisterOptions options = SmallPacks();
  Persister::Opened opened = Persister::Open(store, options).value();
  engine::Arena arena = std::move(opened.arena);
  Persister persister = std::move(opened.persister);
  w.Fill(arena, 300);

  const double fractions[] = {0.001, 0.01, 0.05, 0.1, 0.3, 1.0};
  double worst_ratio = 0;
  std::uint32_t compactions = 0;
  std::uint32_t deltas = 0;
  for (int commit = 1; commit <= 220; ++commit) {
    w.Step(arena, fractions[w.rng()() % 6]);
    const std::vector<engine::PageId> dirty = arena.DirtyPages();
    std::uint32_t blank = 0;  // freed pages: stored in the manifest alone
    for (engine::PageId id : dirty) {
      std::uint32_t word;
      blank += IsBlankPage({arena.Read(id), arena.page_size()}, &word) ? 1 : 0;
    }
    Result<CommitPlan> plan = persister.Capture(arena, 1000 + commit);
    REQUIRE(plan.ok());
    // Only dirty pages are copied (plus compaction moves, counted apart).
    CHECK(plan->dirty_pages() == dirty.size());
    CHECK(plan->staged_bytes() ==
          std::uint64_t{plan->dirty_pages() - blank + plan->moved_pages()} * arena.page_size());
    CHECK(arena.dirty().Count() == 0);
    compactions += plan->compacted();
    deltas += plan->delta_manifest();
    REQUIRE(store.Apply(plan->batch()).ok());
    persister.Succeeded(std::move(plan).value());
    CHECK(persister.version() == static_cast<std::uint64_t>(commit));

    // Dead bytes in the current version's packs stay at most half of them.
    CHECK(persister.current_pack_bytes() <= 2 * persister.current_live_bytes());
    const double live = static_cast<double>(arena.size_bytes());
    const double ratio = static_cast<double>(store.StoredBytes(RecordKind::kPack)) / live;
    worst_ratio = std::max(worst_ratio, ratio);
    // Retention keeps 2 versions: the older one's packs that compaction or
    // overwrites made dead in the newer one are stored too.
    CHECK(store.StoredBytes(RecordKind::kPack) <= 3 * arena.size_bytes() + 2 * options.max_pack_bytes);
    // Two retained versions, each a chain of manifests whose deltas more
    // than halve in size from link to link.
    CHECK(store.RecordCount(RecordKind::kManifest) <= 2 * (std::bit_width(arena.page_count()) + 2));

    RequireRestoresTo(store, arena, commit);
    if (commit == 100) {
      // Reopen from storage and continue from there, as after a page reload.
      Persister::Opened again = Persister::Open(store, options).value();
      CHECK(again.restored_version == 100);
      CHECK(again.failures.empty());
      REQUIRE(Bytes(again.arena) == Bytes(arena));
      arena = std::move(again.arena);
      persister = std::move(again.persister);
    }
  }
  CHECK(compactions > 0);
  CHECK(deltas > 50);         // both manifest shapes are exercised
  CHECK(deltas < 220 - 10);
  std::printf("seed %llu: worst stored/live ratio %.2f, %u compactions, %u delta manifests\n",
              static_cast<unsigned long long>(seed), worst_ratio, compactions, deltas);
}

TEST_CASE("every retained version restores exactly", "[persistence]") {
  Workload w(11);
  MemoryRecordStore store;
  PersisterOptions options = SmallPacks();
  options.retain_versions = 3;
  engine::Arena arena = engine::Arena::Create().value();
  Persister persister(options);
  w.Fill(arena, 64);
  std::vector<std::vector<std::uint8_t>> states;
  for (int i = 0; i < 30; ++i) {
    w.Step(arena, 0.2);
    REQUIRE(persister.Commit(arena, store, i).ok());
    states.push_back(Bytes(arena));
  }
  // Exactly the manifests of the three versions' chains are stored.
  std::set<std::string> chains;
  for (std::uint64_t v = 28; v <= 30; ++v) {
    Result<RestoredVersion> r = RestoreVersion(store, v, {});
    REQUIRE(r.ok());
    CHECK(Bytes(r->arena) == states[v - 1]);
    for (const ManifestLink& l : r->chain) chains.insert(ManifestKey(l.version));
  }
  const std::vector<std::string> stored = store.List(RecordKind::kManifest).value();
  CHECK(std::set<std::string>(stored.begin(), stored.end()) == chains);
  if (!chains.count(ManifestKey(27))) {
    CHECK(RestoreVersion(store, 27, {}).status().IsCorruption());  // collected
  }
}

struct SmallCommits {
  double average_manifest_bytes = 0;
  std::uint64_t largest_manifest_bytes = 0;
  std::uint64_t full_manifest_bytes = 0;
};

// 400 commits of 1-3 random pages each on a state of `pages` pages.
SmallCommits RunSmallCommits(std::uint32_t pages) {
  Workload w(5);
  MemoryRecordStore store;
  PersisterOptions options;
  options.store_id = 7;  // as RequireRestoresTo expects
  engine::Arena arena = engine::Arena::Create().value();
  Persister persister(options);
  w.Fill(arena, pages);
  REQUIRE(persister.Commit(arena, store, 0).ok());
  SmallCommits out;
  out.full_manifest_bytes = store.StoredBytes(RecordKind::kManifest);
  std::uint64_t manifest_bytes = 0;
  const int kCommits = 400;
  for (int i = 1; i <= kCommits; ++i) {
    for (int k = 0, n = 1 + i % 3; k < n; ++k) {
      arena.Write(1 + static_cast<engine::PageId>(w.rng()() % (arena.page_count() - 1)))[100] ^= 1;
    }
    Result<CommitPlan> plan = persister.Capture(arena, i);
    REQUIRE(plan.ok());
    CHECK(plan->delta_manifest());
    manifest_bytes += plan->manifest_bytes();
    out.largest_manifest_bytes = std::max<std::uint64_t>(out.largest_manifest_bytes, plan->manifest_bytes());
    REQUIRE(store.Apply(plan->batch()).ok());
    persister.Succeeded(std::move(plan).value());
    if (i % 50 == 0) RequireRestoresTo(store, arena, persister.version());
    // Stored manifests: two versions' chains of at most ~log2(pages) links.
    CHECK(store.RecordCount(RecordKind::kManifest) <= 2 * (std::bit_width(pages) + 2));
  }
  out.average_manifest_bytes = static_cast<double>(manifest_bytes) / kCommits;
  std::printf("small commits on %u pages: average manifest %.0f bytes, largest %llu, full %llu\n", pages,
              out.average_manifest_bytes, static_cast<unsigned long long>(out.largest_manifest_bytes),
              static_cast<unsigned long long>(out.full_manifest_bytes));
  return out;
}

TEST_CASE("a small commit's manifest does not grow with the state", "[persistence]") {
  // A full manifest is 24 bytes per page; commits of 1-3 pages write deltas
  // (merged LSM-style) whose size follows the changed pages: the same
  // commits on a state 8x larger write about the same manifest bytes.
  const SmallCommits small = RunSmallCommits(1024);
  const SmallCommits large = RunSmallCommits(8192);
  CHECK(large.full_manifest_bytes > 7 * small.full_manifest_bytes);
  CHECK(large.average_manifest_bytes < 1.5 * small.average_manifest_bytes);
  CHECK(large.average_manifest_bytes < large.full_manifest_bytes / 20.0);
  CHECK(large.largest_manifest_bytes < large.full_manifest_bytes / 2);  // never the whole table
}

TEST_CASE("a state larger than max_packs full packs grows in chunks without rewriting itself", "[persistence]") {
  // 16 pages per pack and at most 8 packs: 1,200 pages need 75. Each commit
  // adds 100 pages; one that merged back down to 4 packs would move
  // everything it has (a 2 GiB state needs 256 packs of 8 MiB, the default
  // max_packs).
  Workload w(5);
  MemoryRecordStore store;
  PersisterOptions options = SmallPacks();
  options.max_packs = 8;
  Persister::Opened opened = Persister::Open(store, options).value();
  engine::Arena arena = std::move(opened.arena);
  Persister persister = std::move(opened.persister);
  std::uint64_t moved = 0;
  for (std::uint32_t pages = 100; pages <= 1200; pages += 100) {
    w.Fill(arena, pages);
    Result<CommitPlan> plan = persister.Capture(arena, 0);
    REQUIRE(plan.ok());
    moved += plan->moved_pages();
    REQUIRE(store.Apply(plan->batch()).ok());
    persister.Succeeded(std::move(*plan));
  }
  CHECK(moved < 1200);  // rewritten in all: less than the state once
  RequireRestoresTo(store, arena, 12);
}

TEST_CASE("a failed commit keeps the previous version and the pages dirty", "[persistence]") {
  const std::size_t fail_after = GENERATE(0, 1, 2, 3);
  INFO("fail batches larger than " << fail_after);
  Workload w(5);
  MemoryRecordStore store;
  engine::Arena arena = engine::Arena::Create().value();
  Persister persister(SmallPacks());
  w.Fill(arena, 100);
  REQUIRE(persister.Commit(arena, store, 1).ok());
  const std::vector<std::uint8_t> v1 = Bytes(arena);
  const std::uint64_t stored = store.StoredBytes();

  w.Step(arena, 0.5);
  const std::vector<engine::PageId> dirty = arena.DirtyPages();
  store.FailBatchesLargerThan(fail_after);
  Status s = persister.Commit(arena, store, 2);
  CHECK(s.code() == Code::kOutOfSpace);
  CHECK(store.StoredBytes() == stored);  // nothing landed
  CHECK(arena.DirtyPages() == dirty);     // nothing is considered saved
  CHECK(persister.version() == 1);
  {
    Result<Restored> r = RestoreLatest(store, {});
    REQUIRE(r.ok());
    CHECK(r->manifest.version == 1);
    CHECK(Bytes(r->arena) == v1);
  }
  store.ClearFailure();
  REQUIRE(persister.Commit(arena, store, 3).ok());
  CHECK(arena.dirty().Count() == 0);
  RequireRestoresTo(store, arena, 2);
}

TEST_CASE("pages written while a commit is in flight stay dirty", "[persistence]") {
  const bool succeed = GENERATE(true, false);
  Workload w(9);
  MemoryRecordStore store;
  engine::Arena arena = engine::Arena::Create().value();
  Persister persister(SmallPacks());
  w.Fill(arena, 20);
  Result<CommitPlan> plan = persister.Capture(arena, 1);
  REQUIRE(plan.ok());
  CHECK(persister.Capture(arena, 1).status().code() == Code::kBusy);
  // The staged bytes are a copy: writing the arena now must not change them.
  const std::vector<std::uint8_t> staged_before(plan->puts()[0].bytes.begin(),
                                                plan->puts()[0].bytes.end());
  arena.Write(3)[0] ^= 0xFF;
  arena.Write(5)[100] ^= 0xFF;
  CHECK(std::equal(staged_before.begin(), staged_before.end(), plan->puts()[0].bytes.begin()));
  if (succeed) {
    REQUIRE(store.Apply(plan->batch()).ok());
    persister.Succeeded(std::move(plan).value());
    CHECK(arena.DirtyPages() == std::vector<engine::PageId>{3, 5});
  } else {
    persister.Failed(std::move(plan).value(), arena);
    CHECK(arena.dirty().Count() == arena.page_count());
  }
  REQUIRE(persister.Commit(arena, store, 2).ok());
  RequireRestoresTo(store, arena, succeed ? 2 : 1);
}

TEST_CASE("a second writer on the same base gets Conflict and loses nothing", "[persistence]") {
  Workload w(3);
  MemoryRecordStore store;
  PersisterOptions a_opts = SmallPacks();
  {
    engine::Arena arena = engine::Arena::Create().value();
    Persister p(a_opts);
    w.Fill(arena, 40);
    REQUIRE(p.Commit(arena, store, 1).ok());
  }
  PersisterOptions b_opts = a_opts;
  b_opts.writer_id = 0xB0B;
  Persister::Opened a = Persister::Open(store, a_opts).value();
  Persister::Opened b = Persister::Open(store, b_opts).value();
  w.Step(a.arena, 0.3);
  w.Step(b.arena, 0.3);
  REQUIRE(a.persister.Commit(a.arena, store, 2).ok());
  const std::vector<engine::PageId> b_dirty = b.arena.DirtyPages();
  CHECK(b.persister.Commit(b.arena, store, 2).code() == Code::kConflict);
  CHECK(b.arena.DirtyPages() == b_dirty);
  RequireRestoresTo(store, a.arena, 2);
}

}  // namespace
}  // namespace keepstate::persistence

namespace keepstate::persistence {
namespace {

TEST_CASE("reopening after every few commits never loses a committed version", "[persistence]") {
  // What a page reload or a killed browser does: the in-memory persister is
  // gone, the store is reopened from its records, commits go on (and one in
  // flight may never land). Small commits build delta chains across reopens.
  const std::uint64_t seed = GENERATE(1, 2, 3, 4);
  INFO("seed " << seed);
  Workload w(seed);
  MemoryRecordStore store;
  PersisterOptions options;
  options.store_id = 7;
  options.max_pack_bytes = 64 * 1024;
  std::vector<std::uint8_t> committed;
  std::uint64_t committed_version = 0;
  for (int session = 0; session < 60; ++session) {
    Result<Persister::Opened> opened = Persister::Open(store, options);
    INFO("session " << session << ": " << opened.status().ToString());
    REQUIRE(opened.ok());
    Persister::Opened& o = *opened;
    for (const VersionFailure& f : o.failures) INFO("failure: " << f.status.ToString());
    REQUIRE(o.failures.empty());
    REQUIRE(o.restored_version == committed_version);
    if (committed_version) REQUIRE(Bytes(o.arena) == committed);
    if (session == 0) w.Fill(o.arena, 200);
    const int commits = 1 + static_cast<int>(w.rng()() % 6);
    for (int c = 0; c < commits; ++c) {
      w.Step(o.arena, (w.rng()() % 4 == 0) ? 0.3 : 0.01);
      REQUIRE(o.persister.Commit(o.arena, store, session * 100 + c).ok());
      committed = Bytes(o.arena);
      committed_version = o.persister.version();
      RequireRestoresTo(store, o.arena, committed_version);
    }
    if (w.rng()() % 3 == 0) {
      // A commit in flight when the page died: captured, never applied.
      // (Writes only: the workload's list of allocated pages must stay true
      // for the reopened arena.)
      for (engine::PageId id = 1; id < o.arena.page_count(); id += 7) o.arena.Write(id)[64] ^= 1;
      REQUIRE(o.persister.Capture(o.arena, 0).ok());
    }
  }
}

TEST_CASE("out of memory: a capture that cannot stage its pages changes nothing and the next commit lands",
          "[persistence]") {
  MemoryRecordStore store;
  engine::Arena arena = engine::Arena::Create().value();
  Persister persister(SmallPacks());
  Workload w(41);
  w.Fill(arena, 20);
  REQUIRE(persister.Commit(arena, store, 1).ok());
  w.Fill(arena, 300);  // more than the last commit's staging buffer holds
  w.Step(arena, 0.5);
  const std::vector<engine::PageId> dirty = arena.DirtyPages();
  const std::uint64_t stored = store.StoredBytes();
  engine::SetMaxPageBufferBytes(16 * 4096);  // less than the dirty pages
  Result<CommitPlan> plan = persister.Capture(arena, 2);
  engine::SetMaxPageBufferBytes(0);
  CHECK(plan.status().code() == Code::kOutOfSpace);
  CHECK(arena.DirtyPages() == dirty);
  CHECK_FALSE(persister.in_flight());
  CHECK(persister.version() == 1);
  CHECK(store.StoredBytes() == stored);
  REQUIRE(persister.Commit(arena, store, 3).ok());
  CHECK(persister.version() == 2);
  RequireRestoresTo(store, arena, 2);
}

}  // namespace
}  // namespace keepstate::persistence
