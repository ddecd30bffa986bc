// Snapshot file tests: a random store survives export and import byte for
// byte, whatever the chunking on either side; every single flipped byte and
// every truncation of a file is Corruption; a newer format is Unsupported;
// foreign bytes are rejected; a state claimed larger than the limit is
// refused before anything is allocated; an export refuses a state that has
// (or gets) uncommitted changes. The test reads the file with its own
// offsets, so the layout in docs/snapshot-format.md is checked too.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "keepstate/engine/page_buffer.h"
#include "keepstate/engine/store.h"
#include "keepstate/persistence/format.h"
#include "keepstate/persistence/persister.h"
#include "keepstate/persistence/restore.h"
#include "keepstate/persistence/snapshot_file.h"

namespace keepstate::persistence {
namespace {

using Bytes = std::vector<std::uint8_t>;
using Model = std::map<std::string, std::string>;

std::string RandomBytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// A store of `keys` random entries (some values large enough for overflow
// pages), a few deleted, schema version set, all pages clean (as after a
// commit).
std::unique_ptr<engine::Store> RandomStore(std::uint64_t seed, int keys, Model& model,
                                           std::uint32_t page_size = 4096) {
  std::mt19937_64 rng(seed);
  auto store = engine::Store::Create({page_size}).value();
  for (int i = 0; i < keys; ++i) {
    // One rng call per statement: the order of operands of + is unspecified,
    // and the corpus files must be the same from every compiler.
    std::string key = "k/" + std::to_string(rng() % 100000);
    const std::size_t key_tail = rng() % 12;
    key += RandomBytes(rng, key_tail);
    const bool large = rng() % 8 == 0;
    const std::size_t vlen = large ? 2000 + rng() % 20000 : rng() % 200;
    std::string value = RandomBytes(rng, vlen);
    REQUIRE(store->Put(key, value).ok());
    model[key] = value;
  }
  for (int i = 0; i < keys / 5 && !model.empty(); ++i) {
    auto it = model.begin();
    std::advance(it, static_cast<long>(rng() % model.size()));
    REQUIRE(store->Delete(it->first).value());
    model.erase(it);
  }
  store->arena().SetUserVersion(seed + 3);
  store->arena().ClearAllDirty();
  return store;
}

Model Entries(const engine::Store& store) {
  Model m;
  store.Scan({}, [&](std::string_view k, std::string_view v) {
    m.emplace(std::string(k), std::string(v));
    return true;
  });
  return m;
}

Bytes ArenaBytes(const engine::Arena& a) { return Bytes(a.bytes().begin(), a.bytes().end()); }

// Feeds `file` to a reader in random chunks of 1..max_chunk bytes.
Result<ImportedSnapshot> ReadChunked(const Bytes& file, std::size_t max_chunk, std::mt19937_64& rng,
                                     const SnapshotReaderOptions& options = {}) {
  SnapshotReader r(options);
  std::size_t at = 0;
  while (at < file.size()) {
    const std::size_t n = std::min<std::size_t>(file.size() - at, 1 + rng() % max_chunk);
    Status s = r.Add({file.data() + at, n});
    if (!s.ok()) return s;
    at += n;
  }
  return std::move(r).Finish();
}

template <typename T>
T Peek(const Bytes& b, std::size_t offset) {
  T v;
  std::memcpy(&v, b.data() + offset, sizeof v);
  return v;
}
template <typename T>
void Poke(Bytes& b, std::size_t offset, T v) {
  std::memcpy(b.data() + offset, &v, sizeof v);
}

// Recomputes the header check, the file checksum and (with `pages`) every
// page hash, as a writer would, after a test edited fields: the result is an
// intact file of whatever it now says (the offsets are the spec's, written
// out here).
void Reseal(Bytes& f, bool pages = false) {
  const std::uint32_t header_size = Peek<std::uint32_t>(f, 8);
  Poke<std::uint64_t>(f, header_size - 8, HashBytes64({f.data(), header_size - 8}));
  const std::uint32_t ps = Peek<std::uint32_t>(f, 12);
  const std::uint32_t count = pages ? Peek<std::uint32_t>(f, 16) : 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t rec = header_size + std::size_t{i} * (16 + ps);
    const Hash128 h = HashBytes({f.data() + rec + 16, ps});
    Poke(f, rec, h.low);
    Poke(f, rec + 8, h.high);
  }
  if (f.size() < header_size + 32) return;  // a header alone: no trailer
  const Hash128 sum = HashBytes({f.data(), f.size() - 16});
  Poke(f, f.size() - 16, sum.low);
  Poke(f, f.size() - 8, sum.high);
}

TEST_CASE("snapshot file layout is the documented one", "[persistence][snapshot-file]") {
  Model model;
  auto store = RandomStore(1, 50, model);
  const engine::Arena& a = store->arena();
  const Bytes f = EncodeSnapshotFile(a, {42, 1700000000123}).value();
  const std::uint32_t ps = a.page_size(), pages = a.page_count();
  REQUIRE(f.size() == 64 + std::size_t{pages} * (16 + ps) + 32);
  CHECK(std::memcmp(f.data(), "KSNP", 4) == 0);
  CHECK(Peek<std::uint32_t>(f, 4) == 1);
  CHECK(Peek<std::uint32_t>(f, 8) == 64);
  CHECK(Peek<std::uint32_t>(f, 12) == ps);
  CHECK(Peek<std::uint32_t>(f, 16) == pages);
  CHECK(Peek<std::uint32_t>(f, 20) == 0);
  CHECK(Peek<std::uint64_t>(f, 24) == 4);  // seed + 3
  CHECK(Peek<std::uint64_t>(f, 32) == model.size());
  CHECK(Peek<std::uint64_t>(f, 40) == 42);
  CHECK(Peek<std::uint64_t>(f, 48) == 1700000000123);
  CHECK(Peek<std::uint64_t>(f, 56) == HashBytes64({f.data(), 56}));
  for (std::uint32_t i = 0; i < pages; ++i) {
    const std::size_t rec = 64 + std::size_t{i} * (16 + ps);
    const Hash128 h = HashBytes({a.Read(i), ps});
    CHECK(Peek<std::uint64_t>(f, rec) == h.low);
    CHECK(Peek<std::uint64_t>(f, rec + 8) == h.high);
    CHECK(std::memcmp(f.data() + rec + 16, a.Read(i), ps) == 0);
  }
  const std::size_t t = f.size() - 32;
  CHECK(std::memcmp(f.data() + t, "KSND", 4) == 0);
  CHECK(Peek<std::uint32_t>(f, t + 4) == 0);
  CHECK(Peek<std::uint64_t>(f, t + 8) == f.size());
  const Hash128 sum = HashBytes({f.data(), f.size() - 16});
  CHECK(Peek<std::uint64_t>(f, t + 16) == sum.low);
  CHECK(Peek<std::uint64_t>(f, t + 24) == sum.high);
}

TEST_CASE("snapshot file round trip in random chunk sizes", "[persistence][snapshot-file]") {
  for (std::uint64_t seed : {11, 12, 13, 14}) {
    const std::uint32_t page_size = seed == 14 ? 16384 : 4096;
    INFO("seed " << seed << ", page size " << page_size);
    Model model;
    auto store = RandomStore(seed, seed == 11 ? 40 : 600, model, page_size);
    const SnapshotSource source{seed * 100, 1700000000000 + seed};
    const Bytes whole = EncodeSnapshotFile(store->arena(), source).value();

    // The writer pulled in random chunk sizes produces the same bytes.
    std::mt19937_64 rng(seed);
    for (std::size_t max_chunk : {std::size_t{1}, std::size_t{17}, std::size_t{5000}, whole.size()}) {
      if (max_chunk == 1 && whole.size() > 200000) continue;  // keep the test fast
      SnapshotWriter w = SnapshotWriter::Begin(store->arena(), source).value();
      CHECK(w.size() == whole.size());
      Bytes out;
      std::vector<std::uint8_t> buf(max_chunk);
      while (!w.done()) {
        const std::size_t want = 1 + rng() % max_chunk;
        const std::size_t n = w.Read({buf.data(), want}).value();
        REQUIRE(n == std::min<std::uint64_t>(want, whole.size() - out.size()));
        out.insert(out.end(), buf.begin(), buf.begin() + static_cast<long>(n));
      }
      CHECK(w.Read(buf).value() == 0);
      CHECK(out == whole);
    }

    // The reader fed in random chunk sizes rebuilds the same store.
    for (std::size_t max_chunk :
         {std::size_t{1}, std::size_t{16}, std::size_t{4113}, std::size_t{70000}, whole.size()}) {
      if (max_chunk == 1 && whole.size() > 200000) continue;
      INFO("chunks of at most " << max_chunk);
      Result<ImportedSnapshot> r = ReadChunked(whole, max_chunk, rng);
      REQUIRE(r.ok());
      CHECK(r->info.format_version == kSnapshotFileFormatVersion);
      CHECK(r->info.page_size == page_size);
      CHECK(r->info.page_count == store->arena().page_count());
      CHECK(r->info.user_version == seed + 3);
      CHECK(r->info.entry_count == model.size());
      CHECK(r->info.store_version == seed * 100);
      CHECK(r->info.created_unix_ms == 1700000000000 + seed);
      CHECK(r->info.file_size == whole.size());
      CHECK(ArenaBytes(r->store->arena()) == ArenaBytes(store->arena()));
      const engine::Superblock a = r->store->arena().superblock(), b = store->arena().superblock();
      CHECK(std::memcmp(&a, &b, sizeof a) == 0);
      CHECK(r->store->arena().dirty().Count() == 0);
      CHECK(Entries(*r->store) == model);
    }
    // With the file's size known up front, too.
    SnapshotReaderOptions o;
    o.file_size = whole.size();
    Result<ImportedSnapshot> r = ReadChunked(whole, 9000, rng, o);
    REQUIRE(r.ok());
    CHECK(Entries(*r->store) == model);
  }
}

TEST_CASE("an imported snapshot commits as a new store's first version and restores exactly",
          "[persistence][snapshot-file]") {
  Model model;
  auto source = RandomStore(31, 400, model, 8192);
  const Bytes file = EncodeSnapshotFile(source->arena(), {17, 1700000000000}).value();
  ImportedSnapshot imported = DecodeSnapshotFile(file).value();
  engine::Arena& arena = imported.store->arena();
  // What importStore does: no page of the imported state is stored yet, so
  // every page is dirty for the first commit.
  std::vector<engine::PageId> all(arena.page_count());
  for (std::uint32_t i = 0; i < arena.page_count(); ++i) all[i] = i;
  arena.MarkDirty(all);
  PersisterOptions o;
  o.page_size = imported.info.page_size;
  Persister p(o);
  MemoryRecordStore records;
  REQUIRE(p.Commit(arena, records, 1700000000001).ok());
  Result<Restored> restored = RestoreLatest(records, {});
  REQUIRE(restored.ok());
  CHECK(ArenaBytes(restored->arena) == ArenaBytes(source->arena()));
  CHECK(restored->arena.user_version() == 34);  // seed + 3
  auto reopened = engine::Store::FromArena(std::move(restored->arena), /*verify=*/true).value();
  CHECK(Entries(*reopened) == model);
}

TEST_CASE("snapshot file of an empty store", "[persistence][snapshot-file]") {
  auto store = engine::Store::Create().value();
  store->arena().ClearAllDirty();
  const Bytes f = EncodeSnapshotFile(store->arena(), {}).value();
  CHECK(f.size() == 64 + 4112 + 32);
  Result<ImportedSnapshot> r = DecodeSnapshotFile(f);
  REQUIRE(r.ok());
  CHECK(r->store->Count() == 0);
  CHECK(r->info.store_version == 0);
  // The imported store is a normal one.
  REQUIRE(r->store->Put("a", "b").ok());
  std::string v;
  REQUIRE(r->store->Get("a", &v).ok());
  CHECK(v == "b");
}

struct Small {
  Model model;
  std::unique_ptr<engine::Store> store;
  Bytes file;
  Small() {
    store = RandomStore(5, 12, model);
    file = EncodeSnapshotFile(store->arena(), {3, 1700000000000}).value();
  }
};

TEST_CASE("snapshot file: every flipped byte is Corruption", "[persistence][snapshot-file]") {
  Small s;
  REQUIRE(s.store->arena().page_count() >= 2);
  REQUIRE(DecodeSnapshotFile(s.file).ok());
  std::mt19937_64 rng(77);
  for (std::size_t i = 0; i < s.file.size(); ++i) {
    Bytes f = s.file;
    f[i] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    INFO("byte " << i);
    Result<ImportedSnapshot> r =
        i % 64 == 0 ? ReadChunked(f, 1 + rng() % 5000, rng) : DecodeSnapshotFile(f);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().IsCorruption());
  }
  // Flips in a page's bytes or hash name that page; the header's and the
  // trailer's fields are caught by their own checks.
  const Bytes& f = s.file;
  for (std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{20}, std::size_t{60},
                         std::size_t{64}, std::size_t{64 + 16 + 100}, f.size() - 40, f.size() - 30,
                         f.size() - 20, f.size() - 1}) {
    Bytes g = f;
    g[at] ^= 0x10;
    const Status st = DecodeSnapshotFile(g).status();
    INFO("byte " << at << ": " << st.ToString());
    if (at < 4) {
      CHECK(st.message().find("bad magic") != std::string::npos);
    } else if (at < 64) {
      CHECK(st.message().find("header") != std::string::npos);
    } else if (at < f.size() - 32) {
      const std::string page = "page " + std::to_string((at - 64) / (16 + 4096)) + " ";
      CHECK(st.message().find(page) != std::string::npos);
      CHECK(st.message().find("hash mismatch") != std::string::npos);
    } else if (at < f.size() - 16) {
      CHECK(st.message().find("trailer") != std::string::npos);
    } else {
      CHECK(st.message().find("file checksum mismatch") != std::string::npos);
    }
  }
}

TEST_CASE("snapshot file: every truncation and any extension is Corruption",
          "[persistence][snapshot-file]") {
  Small s;
  std::mt19937_64 rng(78);
  for (std::size_t n = 0; n < s.file.size(); ++n) {
    INFO("first " << n << " bytes");
    const Bytes f(s.file.begin(), s.file.begin() + static_cast<long>(n));
    // Streamed, with the length unknown: Finish finds the end missing.
    Result<ImportedSnapshot> r = ReadChunked(f, 1 + rng() % 8000, rng);
    REQUIRE(r.status().IsCorruption());
    REQUIRE(r.status().message().find(n == 0 ? "empty" : "truncated") != std::string::npos);
    // The length known: refused as soon as the header arrived.
    if (n >= 64) {
      SnapshotReaderOptions o;
      o.file_size = n;
      SnapshotReader reader(o);
      const Status st = reader.Add({f.data(), 64});
      REQUIRE(st.IsCorruption());
      REQUIRE(st.message().find("truncated") != std::string::npos);
    }
  }
  for (std::size_t extra : {1, 7, 5000}) {
    Bytes f = s.file;
    f.resize(f.size() + extra, 0);
    const Status streamed = ReadChunked(f, 1 + rng() % 100, rng).status();
    CHECK(streamed.IsCorruption());
    CHECK(streamed.message().find("after the end of the file") != std::string::npos);
    CHECK(DecodeSnapshotFile(f).status().IsCorruption());
  }
}

TEST_CASE("snapshot file of a newer format is Unsupported", "[persistence][snapshot-file]") {
  Small s;
  Bytes f = s.file;
  Poke<std::uint32_t>(f, 4, kSnapshotFileFormatVersion + 1);
  // Intact (resealed): a newer writer's file.
  Bytes intact = f;
  Reseal(intact);
  const Status st = DecodeSnapshotFile(intact).status();
  CHECK(st.code() == Code::kUnsupported);
  CHECK(st.message().find("newer than this build") != std::string::npos);
  // A newer format may have a longer header: still Unsupported, not a size error.
  Bytes longer(s.file.begin(), s.file.begin() + 56);
  Poke<std::uint32_t>(longer, 4, 7);
  Poke<std::uint32_t>(longer, 8, 128);
  longer.resize(128, 0);
  Reseal(longer);  // only the header: the rest is never reached
  CHECK(DecodeSnapshotFile(longer).status().code() == Code::kUnsupported);
  // Not resealed: the version field is damaged, not newer.
  CHECK(DecodeSnapshotFile(f).status().IsCorruption());
  // Version 0 is never written.
  Poke<std::uint32_t>(f, 4, 0);
  Reseal(f);
  CHECK(DecodeSnapshotFile(f).status().IsCorruption());
}

TEST_CASE("snapshot file: foreign bytes are Corruption", "[persistence][snapshot-file]") {
  std::mt19937_64 rng(79);
  const std::string json = "{\"key\": \"a\", \"value\": \"b\"}\n";
  std::vector<Bytes> inputs = {
      Bytes(json.begin(), json.end()),
      Bytes(10000, 0),
      Bytes{'K', 'S', 'N'},
  };
  Bytes random(20000);
  for (auto& b : random) b = static_cast<std::uint8_t>(rng());
  inputs.push_back(random);
  // The records of a store are not a snapshot file either.
  inputs.push_back(EncodeHead(Head{kFormatVersion, 1, 0, 1, 0}));
  for (const Bytes& in : inputs) {
    const Status st = DecodeSnapshotFile(in).status();
    INFO(st.ToString());
    CHECK(st.IsCorruption());
    CHECK(ReadChunked(in, 3, rng).status().IsCorruption());
  }
  CHECK(DecodeSnapshotFile(inputs[0]).status().message().find("not a keepstate snapshot file") !=
        std::string::npos);
}

TEST_CASE("snapshot file: header fields that disagree with the state are Corruption",
          "[persistence][snapshot-file]") {
  Small s;
  struct Edit {
    std::size_t offset;
    std::uint64_t value;
    int width;
    const char* expect;
  };
  const std::uint32_t pages = s.store->arena().page_count();
  const Edit edits[] = {
      {24, 999, 8, "schema version"},
      {32, s.model.size() + 1, 8, "entry count"},
      {12, 3000, 4, "page size"},
      {12, 131072, 4, "page size"},
      {16, 0, 4, "page count 0"},
      {20, 1, 4, "reserved"},
      {8, 60, 4, "header size"},
      {8, 72, 4, "header size"},
  };
  for (const Edit& e : edits) {
    Bytes f = s.file;
    if (e.width == 4) {
      Poke(f, e.offset, static_cast<std::uint32_t>(e.value));
    } else {
      Poke(f, e.offset, e.value);
    }
    Reseal(f);
    const Status st = DecodeSnapshotFile(f).status();
    INFO("offset " << e.offset << ": " << st.ToString());
    CHECK(st.IsCorruption());
    CHECK(st.message().find(e.expect) != std::string::npos);
  }
  // One page fewer than the superblock says: every hash holds, the superblock does not.
  Bytes f(s.file.begin(), s.file.end() - 32 - (16 + 4096));
  f.resize(f.size() + 32);
  Poke<std::uint32_t>(f, 16, pages - 1);
  std::memcpy(f.data() + f.size() - 32, "KSND", 4);
  Poke<std::uint64_t>(f, f.size() - 24, f.size());
  Reseal(f);
  const Status st = DecodeSnapshotFile(f).status();
  CHECK(st.IsCorruption());
  CHECK(st.message().find("superblock") != std::string::npos);
  // A damaged tree under intact hashes: BTree::Check catches it.
  Bytes g = s.file;
  const std::uint32_t root = s.store->arena().root();
  REQUIRE(root != 0);
  g[64 + std::size_t{root} * (16 + 4096) + 16] = 0xee;  // the node type
  Reseal(g, /*pages=*/true);
  CHECK(DecodeSnapshotFile(g).status().IsCorruption());
}

TEST_CASE("snapshot file claiming a state over the limit is refused before allocating",
          "[persistence][snapshot-file]") {
  Small s;
  Bytes f(s.file.begin(), s.file.begin() + 64);
  // 4 Gi pages of 64 KiB: 256 TiB. Anything sized by it would fail or hang.
  Poke<std::uint32_t>(f, 12, 65536);
  Poke<std::uint32_t>(f, 16, 0xffffffffu);
  Reseal(f);
  SnapshotReader r;
  const Status st = r.Add(f);
  CHECK(st.code() == Code::kOutOfSpace);
  CHECK(st.message().find("exceeds the limit") != std::string::npos);
  REQUIRE(r.info());
  CHECK(r.info()->page_count == 0xffffffffu);
  // A caller's smaller limit applies the same way, and the real file fits a
  // limit of exactly its size.
  SnapshotReaderOptions o;
  o.max_state_bytes = s.store->arena().size_bytes() - 1;
  CHECK(DecodeSnapshotFile(s.file, o).status().code() == Code::kOutOfSpace);
  o.max_state_bytes = s.store->arena().size_bytes();
  CHECK(DecodeSnapshotFile(s.file, o).ok());
}

TEST_CASE("snapshot export refuses uncommitted or changing state", "[persistence][snapshot-file]") {
  Model model;
  auto store = RandomStore(9, 300, model);
  REQUIRE(store->Put("new", "uncommitted").ok());
  const Status dirty = SnapshotWriter::Begin(store->arena(), {}).status();
  CHECK(dirty.code() == Code::kBusy);
  CHECK(dirty.message().find("commit first") != std::string::npos);
  store->arena().ClearAllDirty();

  SnapshotWriter w = SnapshotWriter::Begin(store->arena(), {}).value();
  std::vector<std::uint8_t> buf(10000);
  REQUIRE(w.Read(buf).ok());
  REQUIRE(store->Put("new", "during the export").ok());
  const Status changed = w.Read(buf).status();
  CHECK(changed.code() == Code::kBusy);
  CHECK(changed.message().find("changed during the export") != std::string::npos);
  store->arena().ClearAllDirty();
  CHECK(w.Read(buf).status().code() == Code::kBusy);  // sticky: the bytes so far are void
}

TEST_CASE("reader errors are sticky and free the partial state", "[persistence][snapshot-file]") {
  Small s;
  Bytes f = s.file;
  f[64 + 20] ^= 1;  // page 0's bytes
  SnapshotReader r;
  REQUIRE(r.Add({f.data(), 64}).ok());
  CHECK(r.remaining() == f.size() - 64);
  const Status st = r.Add({f.data() + 64, f.size() - 64});
  CHECK(st.IsCorruption());
  CHECK(r.Add({f.data(), 1}).message() == st.message());
  CHECK(std::move(r).Finish().status().message() == st.message());
}

// The fuzz seed corpus (tests/persistence/snapshot-corpus/*.ksnap): real
// files of small states. This test checks that each still imports with this
// build, so the corpus cannot rot when the format changes; with
// KEEPSTATE_WRITE_CORPUS=1 in the environment it (re)writes them first.
struct CorpusFile {
  const char* name;
  std::uint64_t seed;
  int keys;  // 0: an empty store; -1: the overflow and free-list case
  std::uint64_t user_version;
};
constexpr CorpusFile kCorpus[] = {
    {"empty", 0, 0, 0},
    {"small", 21, 8, 2},
    {"overflow", 22, -1, 7},  // a value in overflow pages, freed pages on the free list
};

std::string CorpusPath(const char* name) {
  return std::string(KEEPSTATE_SNAPSHOT_CORPUS_DIR) + "/" + name + ".ksnap";
}

Bytes ReadWholeFile(const std::string& path) {
  Bytes out;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::uint8_t buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
    std::fclose(f);
  }
  return out;
}

TEST_CASE("snapshot corpus files still import", "[persistence][snapshot-file]") {
  const char* write = std::getenv("KEEPSTATE_WRITE_CORPUS");
  for (const CorpusFile& c : kCorpus) {
    INFO(c.name);
    Model model;
    std::unique_ptr<engine::Store> store;
    if (c.keys <= 0) {
      store = engine::Store::Create().value();
      if (c.keys < 0) {
        std::mt19937_64 rng(c.seed);
        model["big"] = RandomBytes(rng, 5000);
        model["small"] = "v";
        // Put first, so that its freed page is not at the arena's end (which
        // the store returns): the file holds a free list.
        REQUIRE(store->Put("gone", RandomBytes(rng, 3000)).ok());
        for (const auto& [k, v] : model) REQUIRE(store->Put(k, v).ok());
        REQUIRE(store->Delete("gone").value());
        REQUIRE(store->arena().free_count() > 0);
      }
    } else {
      store = RandomStore(c.seed, c.keys, model);
    }
    store->arena().SetUserVersion(c.user_version);
    store->arena().ClearAllDirty();
    if (write != nullptr && std::string(write) == "1") {
      const Bytes f = EncodeSnapshotFile(store->arena(), {c.seed + 1, 1700000000000}).value();
      std::FILE* out = std::fopen(CorpusPath(c.name).c_str(), "wb");
      REQUIRE(out != nullptr);
      REQUIRE(std::fwrite(f.data(), 1, f.size(), out) == f.size());
      REQUIRE(std::fclose(out) == 0);
    }
    const Bytes f = ReadWholeFile(CorpusPath(c.name));
    REQUIRE_FALSE(f.empty());
    CHECK(f.size() <= 24 * 1024);  // the corpus stays small
    Result<ImportedSnapshot> r = DecodeSnapshotFile(f);
    REQUIRE(r.ok());
    CHECK(r->info.user_version == c.user_version);
    CHECK(Entries(*r->store) == model);
  }
}

TEST_CASE("a snapshot file of unknown size takes memory as its pages arrive, not for its header's claim",
          "[persistence][snapshot-file]") {
  Model model;
  auto store = RandomStore(21, 600, model, 4096);
  const Bytes whole = EncodeSnapshotFile(store->arena(), SnapshotSource{1, 1}).value();
  REQUIRE(store->arena().page_count() > 200);
  const std::span<const std::uint8_t> head(whole.data(), 100000);  // the header and about 24 pages
  const std::span<const std::uint8_t> rest(whole.data() + head.size(), whole.size() - head.size());
  engine::SetMaxPageBufferBytes(std::size_t{150} * 4096);  // less than the whole state
  {
    // Size unknown (a download without its length): the header costs little; memory runs out
    // only once more pages arrived than fit.
    SnapshotReader reader(SnapshotReaderOptions{});
    CHECK(reader.Add(head).ok());
    CHECK(reader.Add(rest).code() == Code::kOutOfSpace);
  }
  {
    // Size known: the claim is checked against it, and the memory is taken at the header.
    SnapshotReaderOptions o;
    o.file_size = whole.size();
    SnapshotReader reader(o);
    CHECK(reader.Add(head).code() == Code::kOutOfSpace);
  }
  engine::SetMaxPageBufferBytes(0);
  SnapshotReader reader(SnapshotReaderOptions{});
  REQUIRE(reader.Add(head).ok());
  REQUIRE(reader.Add(rest).ok());
  Result<ImportedSnapshot> r = std::move(reader).Finish();
  REQUIRE(r.ok());
  CHECK(Entries(*r->store) == model);
}

}  // namespace
}  // namespace keepstate::persistence
