// Restore tests: any flipped byte, truncation or missing record of the newest
// version is detected as Corruption (never a crash) and restore falls back to
// the previous retained version, which restores exactly; newer formats are
// Unsupported.
#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <set>

#include "keepstate/persistence/persister.h"
#include "keepstate/persistence/restore.h"
#include "workload.h"

namespace keepstate::persistence {
namespace {

using testing::Bytes;
using testing::Workload;

// A store holding versions 7 and 8 (retained) and the manifests of their
// chains, and the exact bytes of every version.
struct Fixture {
  MemoryRecordStore store;
  std::vector<std::uint8_t> newest, previous;  // states of versions N and N-1
  std::vector<std::vector<std::uint8_t>> states;  // states[v] of version v
  std::uint64_t n = 0;
  Manifest newest_manifest, previous_manifest;  // resolved: full page tables
  std::vector<std::uint64_t> newest_chain, previous_chain;  // their manifests' versions

  Fixture() {
    Workload w(42);
    PersisterOptions o;
    o.max_pack_bytes = 32 * 1024;  // 8 pages
    engine::Arena arena = engine::Arena::Create().value();
    Persister p(o);
    w.Fill(arena, 96);
    // Small steps, so that the newest manifests are deltas over a chain.
    for (int i = 1; i <= 8; ++i) {
      w.Step(arena, i == 1 ? 0.4 : i == 8 ? 0.02 : 0.06);
      REQUIRE(p.Commit(arena, store, i).ok());
      previous = newest;
      newest = Bytes(arena);
      states.resize(i + 1);
      states[i] = newest;
    }
    n = p.version();
    Resolve(n, newest_manifest, newest_chain);
    Resolve(n - 1, previous_manifest, previous_chain);
  }

  void Resolve(std::uint64_t v, Manifest& m, std::vector<std::uint64_t>& chain) {
    ResolvedManifest r = ResolveManifest(store, v, {}).value();
    m = std::move(r.manifest);
    for (const ManifestLink& l : r.chain) chain.push_back(l.version);
  }

  // Does damage to pack `key` (at `offset`, or anywhere if nullopt) break m?
  static bool Breaks(const Manifest& m, const std::string& key, std::optional<std::size_t> offset) {
    for (const PageLocation& loc : m.pages) {
      if (loc.pack == kBlankPage || PackKey(m.packs[loc.pack].id) != key) continue;
      if (!offset || (*offset >= loc.offset && *offset < loc.offset + m.page_size)) return true;
    }
    return false;
  }

  // What RestoreLatest must produce after damaging record (kind, key):
  // the newest version the damage does not break, or nothing.
  const std::vector<std::uint8_t>* Expected(RecordKind kind, const std::string& key,
                                            std::optional<std::size_t> offset,
                                            std::uint64_t* version) const {
    auto breaks = [&](const Manifest& m, const std::vector<std::uint64_t>& chain) {
      if (kind == RecordKind::kManifest) {
        return std::find_if(chain.begin(), chain.end(),
                            [&](std::uint64_t v) { return ManifestKey(v) == key; }) != chain.end();
      }
      if (kind == RecordKind::kPack) return Breaks(m, key, offset);
      return false;  // the head: manifests are still found by listing
    };
    if (!breaks(newest_manifest, newest_chain)) return *version = n, &newest;
    if (!breaks(previous_manifest, previous_chain)) return *version = n - 1, &previous;
    return nullptr;
  }

  void Check(MemoryRecordStore& damaged, RecordKind kind, const std::string& key,
             std::optional<std::size_t> offset) const {
    INFO(RecordKindName(kind) << "/" << key << " offset " << (offset ? long(*offset) : -1L));
    Result<Restored> r = RestoreLatest(damaged, {});
    std::uint64_t version = 0;
    const std::vector<std::uint8_t>* expected = Expected(kind, key, offset, &version);
    if (expected == nullptr) {
      // Neither retained version is intact. An older version whose manifest
      // survives as a link of their chains may still verify in full: then
      // it is restored exactly, and reported as a fallback.
      if (r.ok()) {
        INFO("restored older version " << r->manifest.version);
        REQUIRE(r->manifest.version < n - 1);
        CHECK(Bytes(r->arena) == states[r->manifest.version]);
        CHECK(r->fell_back());
        return;
      }
      CHECK(r.status().IsCorruption());
      return;
    }
    REQUIRE(r.ok());
    CHECK(r->manifest.version == version);
    CHECK(Bytes(r->arena) == *expected);
    // Damage to anything the newest version needs is reported, never silent.
    const bool damaged_newest = version != n || kind == RecordKind::kHead;
    CHECK(r->fell_back() == damaged_newest);
    for (const VersionFailure& f : r->failures) {
      CHECK(f.status.IsCorruption());
      INFO(f.status.ToString());
      CHECK(f.status.message().find(f.version == 0 ? "head" : "version " + std::to_string(n)) !=
            std::string::npos);
    }
  }

  std::vector<RecordKey> NewestRecords() const {
    std::vector<RecordKey> keys = {{RecordKind::kHead, std::string(kHeadKey)}};
    for (std::uint64_t v : newest_chain) keys.push_back({RecordKind::kManifest, ManifestKey(v)});
    for (const PackEntry& p : newest_manifest.packs) keys.push_back({RecordKind::kPack, PackKey(p.id)});
    return keys;
  }
};

TEST_CASE("restore verifies and falls back on any flipped byte", "[persistence]") {
  Fixture f;
  REQUIRE(f.n == 8);
  // The newest version is a delta over a chain: damage to any of its
  // manifests is covered below.
  REQUIRE(f.newest_chain.size() >= 3);
  std::mt19937_64 rng(1234);
  int cases = 0;
  for (const RecordKey& k : f.NewestRecords()) {
    const std::size_t size = f.store.Get(k.kind, k.key)->size();
    std::vector<std::size_t> offsets = {0, size - 1, size / 2};
    // Every byte of the head and of the manifest's envelope, and a sample of the rest.
    const std::size_t exhaustive = k.kind == RecordKind::kPack ? 0 : std::min<std::size_t>(size, 64);
    for (std::size_t i = 0; i < exhaustive; ++i) offsets.push_back(i);
    for (int i = 0; i < 40; ++i) offsets.push_back(rng() % size);
    for (std::size_t off : offsets) {
      MemoryRecordStore damaged = f.store;
      (*damaged.Mutable(k.kind, k.key))[off] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
      f.Check(damaged, k.kind, k.key, off);
      ++cases;
    }
  }
  CHECK(cases > 200);
}

TEST_CASE("restore rejects truncated and missing records", "[persistence]") {
  Fixture f;
  std::mt19937_64 rng(99);
  for (const RecordKey& k : f.NewestRecords()) {
    const std::size_t size = f.store.Get(k.kind, k.key)->size();
    for (std::size_t len : {std::size_t{0}, std::size_t{1}, size / 2, size - 1,
                            static_cast<std::size_t>(rng() % size)}) {
      MemoryRecordStore damaged = f.store;
      damaged.Mutable(k.kind, k.key)->resize(len);
      f.Check(damaged, k.kind, k.key, std::nullopt);
    }
    MemoryRecordStore dropped = f.store;
    REQUIRE(dropped.Erase(k.kind, k.key));
    f.Check(dropped, k.kind, k.key, std::nullopt);
    // Appended garbage is as wrong as a missing tail.
    MemoryRecordStore grown = f.store;
    grown.Mutable(k.kind, k.key)->push_back(0);
    f.Check(grown, k.kind, k.key, std::nullopt);
  }
}

TEST_CASE("restore names the version, record and page of a bad page hash", "[persistence]") {
  Fixture f;
  std::uint32_t page = 5;
  while (f.newest_manifest.pages[page].pack == kBlankPage) ++page;  // a page stored in a pack
  const PageLocation& loc = f.newest_manifest.pages[page];
  const std::string key = PackKey(f.newest_manifest.packs[loc.pack].id);
  (*f.store.Mutable(RecordKind::kPack, key))[loc.offset + 17] ^= 1;
  Result<RestoredVersion> r = RestoreVersion(f.store, f.n, {});
  REQUIRE(r.status().IsCorruption());
  CHECK(r.status().message() == "version 8: packs/" + key + ": page " + std::to_string(page) + " at offset " +
                                    std::to_string(loc.offset) + ": hash mismatch");
}

TEST_CASE("a delta's base must be the exact manifest it was written over", "[persistence]") {
  Fixture f;
  REQUIRE(f.newest_chain.size() >= 2);
  // Replace the newest's base with a well-formed, verifying manifest of the
  // same version that is not the same record (another writer's, a stale copy).
  const std::uint64_t base = f.newest_chain[f.newest_chain.size() - 2];
  Manifest other = ResolveManifest(f.store, base, {}).value().manifest;
  other.created_unix_ms += 1;
  f.store.Put(RecordKind::kManifest, ManifestKey(base), EncodeManifest(other));
  Result<RestoredVersion> r = RestoreVersion(f.store, f.n, {});
  REQUIRE(r.status().IsCorruption());
  CHECK(r.status().message() == "version " + std::to_string(f.n) + ": manifests/" + ManifestKey(base) +
                                    ": is not the manifest its delta was written over");
}

TEST_CASE("a newer snapshot format is Unsupported, never a fallback", "[persistence]") {
  Fixture f;
  Manifest m = f.newest_manifest;
  m.format_version = kFormatVersion + 1;
  f.store.Put(RecordKind::kManifest, ManifestKey(f.n), EncodeManifest(m));
  SECTION("newer manifest under a current head") {
    Result<Restored> r = RestoreLatest(f.store, {});
    CHECK(r.status().code() == Code::kUnsupported);
    CHECK(r.status().message().find("format " + std::to_string(kFormatVersion + 1) + " is newer") !=
          std::string::npos);
  }
  SECTION("newer head") {
    Head h = DecodeHead(*f.store.Get(RecordKind::kHead, kHeadKey)).value();
    h.format_version = kFormatVersion + 1;
    f.store.Put(RecordKind::kHead, std::string(kHeadKey), EncodeHead(h));
    CHECK(RestoreLatest(f.store, {}).status().code() == Code::kUnsupported);
    // And a writer of this build refuses to commit over it.
    Persister p(PersisterOptions{});
    CHECK(Persister::Open(f.store, {}).status().code() == Code::kUnsupported);
  }
}

TEST_CASE("a state too large for memory is OutOfSpace, never a fallback or a fresh start", "[persistence]") {
  Fixture f;
  RestoreOptions small;
  small.max_state_bytes = 16 * 4096;  // the fixture's state is larger
  SECTION("intact store") {
    Result<Restored> r = RestoreLatest(f.store, small);
    CHECK(r.status().code() == Code::kOutOfSpace);
  }
  SECTION("newest version corrupt, the previous one does not fit") {
    // The newest manifest is unreadable (a real fallback), then the previous
    // version fails for memory: the search stops there with OutOfSpace
    // instead of concluding that nothing verified.
    f.store.Mutable(RecordKind::kManifest, ManifestKey(f.n))->back() ^= 0x40;
    Result<Restored> r = RestoreLatest(f.store, small);
    CHECK(r.status().code() == Code::kOutOfSpace);
    CHECK(RestoreLatest(f.store, {})->manifest.version == f.n - 1);
  }
  // With enough memory the same records restore: nothing was lost.
  REQUIRE(RestoreLatest(f.store, {}).ok());
}

TEST_CASE("restore of an empty store is NotFound and Open starts fresh", "[persistence]") {
  MemoryRecordStore store;
  CHECK(RestoreLatest(store, {}).status().IsNotFound());
  Persister::Opened o = Persister::Open(store, {}).value();
  CHECK(o.restored_version == 0);
  CHECK(o.arena.page_count() == 1);
}

TEST_CASE("restore rejects a manifest of another store or page size", "[persistence]") {
  Fixture f;
  RestoreOptions other_store;
  other_store.store_id = 999;
  CHECK(RestoreLatest(f.store, other_store).status().IsCorruption());
  RestoreOptions other_size;
  other_size.page_size = 8192;
  CHECK(RestoreLatest(f.store, other_size).status().IsCorruption());
}

TEST_CASE("reopening after a fallback deletes the broken version with the next commit", "[persistence]") {
  Fixture f;
  REQUIRE(f.store.Erase(RecordKind::kManifest, ManifestKey(f.n)));
  Persister::Opened o = Persister::Open(f.store, {}).value();
  CHECK(o.restored_version == f.n - 1);
  REQUIRE(o.failures.size() == 1);
  CHECK(Bytes(o.arena) == f.previous);
  o.arena.Write(1)[0] ^= 1;
  REQUIRE(o.persister.Commit(o.arena, f.store, 100).ok());
  CHECK(o.persister.version() == f.n + 1);
  // Only the new version and the one it was built on remain, with their
  // manifest chains (the new one is a delta over the restored chain).
  std::set<std::string> expected = {ManifestKey(f.n + 1)};
  for (std::uint64_t v : f.previous_chain) expected.insert(ManifestKey(v));
  const std::vector<std::string> manifests = f.store.List(RecordKind::kManifest).value();
  CHECK(std::set<std::string>(manifests.begin(), manifests.end()) == expected);
  const std::vector<std::string> pack_keys = f.store.List(RecordKind::kPack).value();
  for (const std::string& key : pack_keys) {
    CHECK(ParsePackKey(key).value().version != f.n);  // the broken version's packs are gone
  }
  Result<Restored> r = RestoreLatest(f.store, {});
  REQUIRE(r.ok());
  CHECK(!r->fell_back());
  CHECK(Bytes(r->arena) == Bytes(o.arena));
}

}  // namespace
}  // namespace keepstate::persistence

namespace keepstate::persistence {
namespace {

TEST_CASE("a corrupt head is replaced by the next commit, by one writer only", "[persistence]") {
  Fixture f;
  (*f.store.Mutable(RecordKind::kHead, std::string(kHeadKey)))[9] ^= 4;
  PersisterOptions a_opts;
  PersisterOptions b_opts;
  b_opts.writer_id = 2;
  Persister::Opened a = Persister::Open(f.store, a_opts).value();
  Persister::Opened b = Persister::Open(f.store, b_opts).value();
  // Every manifest is a candidate when the head is unreadable: the newest
  // verifies, and the head failure is reported.
  CHECK(a.restored_version == f.n);
  REQUIRE(a.failures.size() == 1);
  CHECK(a.failures[0].version == 0);
  CHECK(Bytes(a.arena) == f.newest);
  CHECK(a.persister.head_version() == kUnreadableHead);

  a.arena.Write(2)[7] ^= 1;
  b.arena.Write(3)[7] ^= 1;
  REQUIRE(a.persister.Commit(a.arena, f.store, 1).ok());
  CHECK(b.persister.Commit(b.arena, f.store, 1).code() == Code::kConflict);
  Result<Restored> r = RestoreLatest(f.store, {});
  REQUIRE(r.ok());
  CHECK(!r->fell_back());
  CHECK(r->manifest.version == f.n + 1);
  CHECK(r->manifest.base_version == f.n);
  CHECK(Bytes(r->arena) == Bytes(a.arena));
}

}  // namespace
}  // namespace keepstate::persistence

namespace keepstate::persistence {
namespace {

TEST_CASE("a restore session fed pack by pack opens like Persister::Open", "[persistence]") {
  Fixture f;
  // What js-bindings holds: the head and manifests, and only the keys of the
  // packs; pack bytes arrive one at a time from elsewhere (IndexedDB).
  MemoryRecordStore keys_only = f.store;
  const std::vector<std::string> pack_keys = f.store.List(RecordKind::kPack).value();
  for (const std::string& key : pack_keys) keys_only.Mutable(RecordKind::kPack, key)->clear();
  const bool damage = GENERATE(false, true);
  INFO("newest version damaged: " << damage);
  std::string damaged_key;
  if (damage) {
    // A page of the newest version in bytes the previous one does not use.
    for (const PageLocation& loc : f.newest_manifest.pages) {
      if (loc.pack == kBlankPage) continue;
      const std::string key = PackKey(f.newest_manifest.packs[loc.pack].id);
      if (Fixture::Breaks(f.previous_manifest, key, loc.offset)) continue;
      damaged_key = key;
      (*f.store.Mutable(RecordKind::kPack, key))[loc.offset] ^= 1;
      break;
    }
    REQUIRE(!damaged_key.empty());
  }
  const PersisterOptions options;
  RestoreSession session =
      RestoreSession::Begin(keys_only, Persister::RestoreOptionsFor(options)).value();
  std::size_t fed = 0;
  // What the first request named ahead: every later pack of the candidate, in
  // the order the session then asks for them (js-bindings reads them all at once).
  std::vector<PackId> named_first = session.needed_ahead(1000);
  std::vector<PackId> asked_after_first;
  // The bytes the first request says are left: what an undamaged restore then reads.
  const std::uint64_t bytes_first = session.needed_bytes();
  CHECK(bytes_first > 0);
  std::uint64_t bytes_fed = 0;
  while (std::optional<PackId> id = session.needed()) {
    const std::optional<PackId> after = session.needed_after();
    if (!damage) CHECK(session.needed_bytes() == bytes_first - bytes_fed);
    const std::vector<PackId> ahead = session.needed_ahead(1000);
    CHECK(ahead.size() <= f.newest_manifest.packs.size());
    CHECK((ahead.empty() ? std::optional<PackId>() : std::optional<PackId>(ahead.front())) == after);
    CHECK(session.needed_ahead(1).size() == std::min<std::size_t>(ahead.size(), 1));
    if (fed > 0) asked_after_first.push_back(*id);
    const std::vector<std::uint8_t> bytes = *f.store.Get(RecordKind::kPack, PackKey(*id));
    REQUIRE(session.Add(std::span<const std::uint8_t>(bytes)).ok());
    bytes_fed += bytes.size();
    ++fed;
    // The read-ahead hint names the next pack, unless verification failed
    // and the session moved on to an older version.
    if (!damage) CHECK(session.needed() == after);
  }
  if (!damage) CHECK(asked_after_first == named_first);
  if (!damage) CHECK(bytes_fed == bytes_first);
  CHECK(session.needed_ahead(1000).empty());
  CHECK(session.needed_bytes() == 0);
  CHECK(fed >= f.newest_manifest.packs.size() / 2);
  Persister::Opened o = Persister::OpenFrom(keys_only, options, std::move(session).Finish()).value();
  CHECK(o.restored_version == (damage ? f.n - 1 : f.n));
  CHECK(Bytes(o.arena) == (damage ? f.previous : f.newest));
  CHECK(o.failures.size() == (damage ? 1u : 0u));
  // It continues like any opened store: the next commit lands and restores.
  o.arena.Write(2)[9] ^= 1;
  REQUIRE(o.persister.Commit(o.arena, f.store, 50).ok());
  Result<Restored> r = RestoreLatest(f.store, {});
  REQUIRE(r.ok());
  CHECK(Bytes(r->arena) == Bytes(o.arena));
}

TEST_CASE("a restore session stops on a read error and on a state too large", "[persistence]") {
  Fixture f;
  RestoreSession session = RestoreSession::Begin(f.store, {}).value();
  REQUIRE(session.needed());
  session.Fail(Status::OutOfSpace("quota"));
  CHECK(!session.needed());
  Result<Restored> r = std::move(session).Finish();
  CHECK(r.status().code() == Code::kOutOfSpace);
  CHECK(r.status().message().find("version 8: packs/") == 0);

  RestoreOptions small;
  small.max_state_bytes = 4096;
  RestoreSession too_big = RestoreSession::Begin(f.store, small).value();
  CHECK(!too_big.needed());
  CHECK(std::move(too_big).Finish().status().code() == Code::kOutOfSpace);
}

}  // namespace
}  // namespace keepstate::persistence
