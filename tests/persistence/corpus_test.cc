// The fuzz seed corpus (tests/persistence/corpus/*.kssf): small valid stores,
// one file each (format: store_file.h). This test checks that every file
// still restores with this build, so the corpus cannot silently rot when the
// format changes; with KEEPSTATE_WRITE_CORPUS=1 in the environment it
// (re)writes the current-format files first. The v1-* files were written by
// format 1 (full manifests only) and are never rewritten: they show that
// stores written before delta manifests still open.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "keepstate/persistence/persister.h"
#include "keepstate/persistence/restore.h"
#include "store_file.h"
#include "workload.h"

namespace keepstate::persistence {
namespace {

struct Seed {
  const char* name;
  std::uint32_t page_size;
  std::uint32_t pages;
  int commits;
  bool damage_newest;  // exercise the fallback path too
};
constexpr Seed kSeeds[] = {
    {"one-commit", 4096, 3, 1, false},
    {"two-versions-many-packs", 4096, 10, 4, false},
    {"page-size-8k", 8192, 3, 2, false},
    {"newest-damaged", 4096, 6, 3, true},
    {"delta-chain", 4096, 24, 8, false},
};

// Format 1 stores (see the file comment) and whether restore falls back.
struct Frozen {
  const char* name;
  std::uint32_t page_size;
  bool fell_back;
};
constexpr Frozen kFormat1[] = {
    {"v1-one-commit", 4096, false},
    {"v1-two-versions-many-packs", 4096, false},
    {"v1-page-size-8k", 8192, false},
    {"v1-newest-damaged", 4096, true},
};

std::string PathOf(const char* name) {
  return std::string(KEEPSTATE_PERSISTENCE_CORPUS_DIR) + "/" + name + ".kssf";
}

MemoryRecordStore Generate(const Seed& s) {
  testing::Workload w(s.pages);
  PersisterOptions o;
  o.page_size = s.page_size;
  o.max_pack_bytes = 2 * s.page_size;
  MemoryRecordStore store;
  engine::Arena arena = engine::Arena::Create(s.page_size).value();
  Persister p(o);
  w.Fill(arena, s.pages);
  for (int i = 0; i < s.commits; ++i) {
    w.Step(arena, 0.3);
    REQUIRE(p.Commit(arena, store, 1700000000000 + i).ok());
  }
  if (s.damage_newest) {
    std::vector<std::uint8_t>* m = store.Mutable(RecordKind::kManifest, ManifestKey(p.version()));
    REQUIRE(m != nullptr);
    (*m)[m->size() / 2] ^= 1;
  }
  return store;
}

std::vector<std::uint8_t> ReadFile(const std::string& path) {
  std::vector<std::uint8_t> out;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::uint8_t buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
    std::fclose(f);
  }
  return out;
}

TEST_CASE("the fuzz seed corpus holds restorable stores", "[persistence]") {
  const char* write = std::getenv("KEEPSTATE_WRITE_CORPUS");
  std::size_t total = 0;
  std::size_t chains = 0;
  for (const Seed& s : kSeeds) {
    INFO(PathOf(s.name));
    if (write != nullptr && std::string(write) == "1") {
      MemoryRecordStore store = Generate(s);
      std::vector<std::uint8_t> bytes = testing::SerializeStore(store);
      std::FILE* f = std::fopen(PathOf(s.name).c_str(), "wb");
      REQUIRE(f != nullptr);
      REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
      std::fclose(f);
    }
    std::vector<std::uint8_t> bytes = ReadFile(PathOf(s.name));
    REQUIRE(!bytes.empty());
    total += bytes.size();
    MemoryRecordStore store;
    REQUIRE(testing::ParseStore(bytes, store));
    Result<Restored> r = RestoreLatest(store, {});
    REQUIRE(r.ok());
    CHECK(r->manifest.page_size == s.page_size);
    CHECK(r->fell_back() == s.damage_newest);
    chains = std::max(chains, r->chain.size());
  }
  CHECK(chains >= 2);  // some seed has a delta manifest
  CHECK(total < 1024 * 1024);
}

TEST_CASE("stores written by snapshot format 1 still restore", "[persistence]") {
  for (const Frozen& s : kFormat1) {
    INFO(PathOf(s.name));
    std::vector<std::uint8_t> bytes = ReadFile(PathOf(s.name));
    REQUIRE(!bytes.empty());
    MemoryRecordStore store;
    REQUIRE(testing::ParseStore(bytes, store));
    Result<Restored> r = RestoreLatest(store, {});
    REQUIRE(r.ok());
    CHECK(r->manifest.format_version == 1);
    CHECK(r->manifest.page_size == s.page_size);
    CHECK(r->fell_back() == s.fell_back);
    // And a writer of this build continues it: its next commit is a delta
    // over the format 1 manifest, and restores.
    PersisterOptions options;
    options.page_size = s.page_size;
    Persister::Opened o = Persister::Open(store, options).value();
    o.arena.Write(o.arena.page_count() - 1)[0] ^= 1;
    REQUIRE(o.persister.Commit(o.arena, store, 1).ok());
    Result<Restored> again = RestoreLatest(store, {});
    REQUIRE(again.ok());
    CHECK(again->manifest.format_version == kFormatVersion);
    CHECK(again->chain.size() == 2);
    CHECK(testing::Bytes(again->arena) == testing::Bytes(o.arena));
  }
}

}  // namespace
}  // namespace keepstate::persistence
