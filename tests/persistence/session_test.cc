// StoreSession tests: the open rules (page size from the store, fallback,
// fresh line) and the head check, as every storage path runs them — the
// in-memory store here, IndexedDB in the browser.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <random>
#include <utility>
#include <string>
#include <vector>

#include "keepstate/persistence/session.h"
#include "workload.h"

namespace keepstate::persistence {
namespace {

using testing::Bytes;
using testing::Workload;

PersisterOptions Options(std::uint64_t writer, std::uint32_t page_size = 4096) {
  PersisterOptions o;
  o.store_id = 3;
  o.writer_id = writer;
  o.page_size = page_size;
  return o;
}

struct Opened {
  StoreSession session;
  engine::Arena arena;
  OpenReport report;
};

Opened Open(MemoryRecordStore& store, PersisterOptions options) {
  StoreSession session(options);
  OpenReport report;
  Result<engine::Arena> arena = session.Open(store, &report);
  REQUIRE(arena.ok());
  return {std::move(session), std::move(*arena), std::move(report)};
}

// The same open, fed one record and one pack at a time as the browser does
// (catch-ups from an open state: tests/replica). With `finished`, an open that
// fails is expected: its error goes there and the Opened is empty.
Opened OpenFed(MemoryRecordStore& store, PersisterOptions options, Status* finished = nullptr) {
  StoreSession session(options);
  for (RecordKind kind : {RecordKind::kHead, RecordKind::kManifest, RecordKind::kPack}) {
    const std::vector<std::string> keys = store.List(kind).value();
    for (const std::string& key : keys) {
      const std::vector<std::uint8_t> bytes =
          kind == RecordKind::kPack ? std::vector<std::uint8_t>{} : store.Get(kind, key).value();
      REQUIRE(session.Load(kind, key, bytes).ok());
    }
  }
  REQUIRE(session.BeginOpen().ok());
  while (std::optional<PackId> id = session.needed()) {
    Result<std::vector<std::uint8_t>> pack = store.Get(RecordKind::kPack, PackKey(*id));
    if (pack.ok()) {
      session.AddPack(std::span<const std::uint8_t>(*pack));
    } else {
      session.AddPack(std::nullopt);
    }
  }
  OpenReport report;
  Result<engine::Arena> arena = session.FinishOpen(&report);
  if (finished != nullptr && !arena.ok()) {
    *finished = arena.status();
    return {std::move(session), engine::Arena::Create(options.page_size).value(), {}};
  }
  REQUIRE(arena.ok());
  return {std::move(session), std::move(*arena), std::move(report)};
}

TEST_CASE("session: commits reopen byte-equal, fed one pack at a time or read at once", "[persistence]") {
  MemoryRecordStore store;
  Opened a = Open(store, Options(1));
  CHECK(a.report.restored_version == 0);
  CHECK_FALSE(a.report.fresh_line);
  Workload w(5);
  w.Fill(a.arena, 200);
  for (int i = 1; i <= 5; ++i) {
    w.Step(a.arena, 0.1);
    REQUIRE(a.session.Commit(a.arena, store, i).ok());
    CHECK(a.session.version() == static_cast<std::uint64_t>(i));
  }
  Opened b = Open(store, Options(2));
  Opened c = OpenFed(store, Options(3));
  CHECK(b.report.restored_version == 5);
  CHECK(c.report.restored_version == 5);
  CHECK(b.report.failures.empty());
  CHECK(Bytes(b.arena) == Bytes(a.arena));
  CHECK(Bytes(c.arena) == Bytes(a.arena));
}

TEST_CASE("session: an existing store keeps its page size whatever the caller asks", "[persistence]") {
  MemoryRecordStore store;
  Opened a = Open(store, Options(1, 8192));
  Workload w(6);
  w.Fill(a.arena, 20);
  REQUIRE(a.session.Commit(a.arena, store, 1).ok());
  Opened b = Open(store, Options(2, 4096));
  CHECK(b.session.options().page_size == 8192);
  CHECK(b.arena.page_size() == 8192);
  CHECK(Bytes(b.arena) == Bytes(a.arena));
}

TEST_CASE("session: a head rewritten at the same version by another writer is a conflict", "[persistence]") {
  MemoryRecordStore store;
  Opened a = Open(store, Options(1));
  Workload w(7);
  w.Fill(a.arena, 30);
  REQUIRE(a.session.Commit(a.arena, store, 1).ok());
  Opened b = Open(store, Options(2));
  Opened c = Open(store, Options(3));
  // b commits version 2; c is still based on version 1.
  Workload wb(8);
  wb.Step(b.arena, 0.5);
  REQUIRE(b.session.Commit(b.arena, store, 2).ok());
  // Someone rewrites the head at version 2 again: same version, other bytes
  // (another writer, another manifest binding). A version-only check would
  // let b's next commit through.
  std::vector<std::uint8_t>* head = store.Mutable(RecordKind::kHead, std::string(kHeadKey));
  REQUIRE(head != nullptr);
  Head h = DecodeHead(*head).value();
  h.writer_id = 99;
  *head = EncodeHead(h);
  REQUIRE(DecodeHead(*head).value().version == 2);
  const std::vector<std::uint8_t> before = *head;
  wb.Step(b.arena, 0.2);
  Status s = b.session.Commit(b.arena, store, 3);
  CHECK(s.code() == Code::kConflict);
  CHECK(s.message().find("version 2") != std::string::npos);
  CHECK(*store.Mutable(RecordKind::kHead, std::string(kHeadKey)) == before);
  // c, based on version 1, conflicts too, and nothing changes.
  Workload wc(9);
  wc.Step(c.arena, 0.2);
  CHECK(c.session.Commit(c.arena, store, 4).code() == Code::kConflict);
  // The failed commits lost nothing: b's pages are dirty again.
  CHECK(b.arena.DirtyPages().size() > 0);
}

TEST_CASE("session: the browser's path (CheckHead inside the write) runs the same rule", "[persistence]") {
  MemoryRecordStore store;
  Opened a = Open(store, Options(1));
  Workload w(10);
  w.Fill(a.arena, 10);
  REQUIRE(a.session.Capture(a.arena, 1).ok());
  double stored = -2;
  CHECK(a.session.CheckHead(std::nullopt, &stored).ok());
  CHECK(stored == 0);
  const std::vector<std::uint8_t> someone = EncodeHead({kFormatVersion, 4, 3, 77, 0});
  CHECK(a.session.CheckHead(std::span<const std::uint8_t>(someone), &stored).code() == Code::kConflict);
  CHECK(stored == 4);
  CHECK(store.Apply(a.session.batch()).ok());
  a.session.CommitDone(Status::Ok(), a.arena);
  CHECK(a.session.version() == 1);
}

// A store of two versions whose every manifest is damaged: no version verifies.
void CommitTwoVersionsThenDamageThem(MemoryRecordStore& store) {
  Opened a = Open(store, Options(1));
  Workload w(11);
  w.Fill(a.arena, 40);
  REQUIRE(a.session.Commit(a.arena, store, 1).ok());
  w.Step(a.arena, 0.5);
  REQUIRE(a.session.Commit(a.arena, store, 2).ok());
  const std::vector<std::string> manifests = store.List(RecordKind::kManifest).value();
  for (const std::string& key : manifests) {
    (*store.Mutable(RecordKind::kManifest, key))[20] ^= 0xff;
  }
}

// Every record of the store, by kind and key.
std::map<std::pair<int, std::string>, std::vector<std::uint8_t>> Records(MemoryRecordStore& store) {
  std::map<std::pair<int, std::string>, std::vector<std::uint8_t>> out;
  for (RecordKind kind : {RecordKind::kHead, RecordKind::kManifest, RecordKind::kPack}) {
    const std::vector<std::string> keys = store.List(kind).value();
    for (const std::string& key : keys) {
      out[{static_cast<int>(kind), key}] = store.Get(kind, key).value();
    }
  }
  return out;
}

PersisterOptions OpenEmptyIfDamaged(PersisterOptions o) {
  o.on_all_damaged = OnAllDamaged::kOpenEmpty;
  return o;
}

TEST_CASE("session: when nothing verifies, the open refuses by default, lists each version and touches nothing",
          "[persistence]") {
  MemoryRecordStore store;
  CommitTwoVersionsThenDamageThem(store);
  const auto before = Records(store);
  for (bool fed : {false, true}) {
    StoreSession session(Options(2));
    OpenReport report;
    Status refused;
    if (fed) {
      OpenFed(store, Options(2), &refused);
    } else {
      Result<engine::Arena> arena = session.Open(store, &report);
      refused = arena.status();
      CHECK_FALSE(session.open());
      CHECK_FALSE(session.fresh_line());
      // Each version tried, newest first, with why.
      REQUIRE(report.failures.size() == 2);
      CHECK(report.failures[0].version == 2);
      CHECK(report.failures[1].version == 1);
      for (const VersionFailure& f : report.failures) CHECK(f.status.code() == Code::kCorruption);
      CHECK_FALSE(report.fresh_line);
      // Unopened: it cannot commit.
      engine::Arena empty = engine::Arena::Create().value();
      CHECK(session.Capture(empty, 3).code() == Code::kClosed);
    }
    CHECK(refused.code() == Code::kCorruption);
    CHECK(refused.message().find("version 2: manifests/0000000000000002") != std::string::npos);
    CHECK(refused.message().find("version 1: manifests/0000000000000001") != std::string::npos);
    CHECK(refused.message().find("checksum mismatch") != std::string::npos);
  }
  CHECK(Records(store) == before);
  // A new store (no head, no manifest) still opens empty without asking.
  MemoryRecordStore fresh;
  CHECK(Open(fresh, Options(5)).report.restored_version == 0);
}

TEST_CASE("session: asked to open empty when nothing verifies, a fresh line opens and its first commit clears the store",
          "[persistence]") {
  MemoryRecordStore store;
  CommitTwoVersionsThenDamageThem(store);
  store.Put(RecordKind::kPack, "not-a-pack-key", {1, 2, 3});  // a record no version names
  Opened b = Open(store, OpenEmptyIfDamaged(Options(2)));
  Opened other = Open(store, OpenEmptyIfDamaged(Options(4)));  // sees the same unreadable data
  CHECK(other.report.fresh_line);
  CHECK(b.report.fresh_line);
  CHECK(b.report.restored_version == 0);
  REQUIRE(b.report.failures.size() == 2);
  CHECK(b.report.failures[0].version == 2);
  CHECK(b.report.failures[0].status.code() == Code::kCorruption);
  CHECK(b.session.fresh_line());

  Workload wb(12);
  wb.Fill(b.arena, 15);
  REQUIRE(b.session.Commit(b.arena, store, 3).ok());
  CHECK_FALSE(b.session.fresh_line());
  // Only the new line's records are left: one head, one manifest, its packs.
  CHECK(store.RecordCount(RecordKind::kHead) == 1);
  CHECK(store.RecordCount(RecordKind::kManifest) == 1);
  const std::vector<std::string> packs = store.List(RecordKind::kPack).value();
  for (const std::string& key : packs) {
    CHECK(ParsePackKey(key).ok());
    CHECK(ParsePackKey(key).value().writer == 2);
  }
  // A fresh line starts at version 1 (docs/architecture.md), and it reopens.
  CHECK(b.session.version() == 1);
  Opened c = Open(store, Options(3));
  CHECK(c.report.restored_version == 1);
  CHECK(Bytes(c.arena) == Bytes(b.arena));
  // The other writer that saw the same unreadable data now finds b's head: conflict, nothing changes.
  Workload wo(15);
  wo.Fill(other.arena, 15);
  CHECK(other.session.Commit(other.arena, store, 4).code() == Code::kConflict);
  CHECK(store.RecordCount(RecordKind::kManifest) == 1);
}

TEST_CASE("session: a damaged newest version falls back and says why", "[persistence]") {
  MemoryRecordStore store;
  Opened a = Open(store, Options(1));
  Workload w(13);
  w.Fill(a.arena, 40);
  REQUIRE(a.session.Commit(a.arena, store, 1).ok());
  const std::vector<std::uint8_t> at_one = Bytes(a.arena);
  w.Step(a.arena, 0.5);
  REQUIRE(a.session.Commit(a.arena, store, 2).ok());
  const std::vector<std::string> packs = store.List(RecordKind::kPack).value();
  for (const std::string& key : packs) {
    if (ParsePackKey(key).value().version == 2) (*store.Mutable(RecordKind::kPack, key))[5] ^= 0xff;
  }
  Opened b = OpenFed(store, Options(2));
  CHECK(b.report.restored_version == 1);
  REQUIRE(b.report.failures.size() == 1);
  CHECK(b.report.failures[0].version == 2);
  CHECK(Bytes(b.arena) == at_one);
  // The next commit is numbered 3 and supersedes the damaged version.
  Workload wb(14);
  wb.Step(b.arena, 0.1);
  REQUIRE(b.session.Commit(b.arena, store, 3).ok());
  CHECK(b.session.version() == 3);
}

TEST_CASE("session: loading after the open began, or opening twice, is refused", "[persistence]") {
  StoreSession s(Options(1));
  REQUIRE(s.BeginOpen().ok());
  CHECK(s.Load(RecordKind::kHead, kHeadKey, {}).code() == Code::kClosed);
  CHECK(s.BeginOpen().code() == Code::kClosed);
  CHECK(s.Load(static_cast<RecordKind>(7), "x", {}).code() == Code::kClosed);
  StoreSession t(Options(1));
  CHECK(t.Load(static_cast<RecordKind>(7), "x", {}).code() == Code::kInvalidArgument);
  double v = 0;
  CHECK(t.CheckHead(std::nullopt, &v).code() == Code::kClosed);
  engine::Arena arena = engine::Arena::Create(4096).value();
  CHECK(t.Capture(arena, 0).code() == Code::kClosed);
}

TEST_CASE("memory record store: an unread record is listed, reads as not found, and says it was asked for",
          "[persistence]") {
  MemoryRecordStore store;
  store.Put(RecordKind::kManifest, "a", {1, 2});
  store.PutUnread(RecordKind::kManifest, "b");
  CHECK(store.List(RecordKind::kManifest).value() == std::vector<std::string>{"a", "b"});
  CHECK(store.Get(RecordKind::kManifest, "a").ok());
  CHECK_FALSE(store.unread_requested());
  CHECK(store.Get(RecordKind::kManifest, "b").status().IsNotFound());
  CHECK(store.unread_requested());
  MemoryRecordStore again;
  again.PutUnread(RecordKind::kManifest, "b");
  CHECK_FALSE(again.View(RecordKind::kManifest, "b").has_value());
  CHECK(again.unread_requested());
  again.Put(RecordKind::kManifest, "b", {3});  // read after all
  CHECK(again.Get(RecordKind::kManifest, "b").value() == std::vector<std::uint8_t>{3});
}

TEST_CASE("arena: ApplyPages validates the state it would make first, and changes nothing on an error", "[persistence]") {
  engine::Arena arena = engine::Arena::Create(4096).value();
  for (int i = 0; i < 10; ++i) arena.Write(arena.Allocate().value())[8] = static_cast<std::uint8_t>(i);
  arena.ClearAllDirty();
  const std::vector<std::uint8_t> before(arena.bytes().begin(), arena.bytes().end());
  std::vector<std::uint8_t> page0(arena.Read(0), arena.Read(0) + 4096);
  page0[0] ^= 0xff;  // bad magic
  const std::vector<engine::PageId> zero{0};
  CHECK(arena.ApplyPages(arena.page_count(), zero, page0.data()).code() == Code::kCorruption);
  CHECK(arena.ApplyPages(arena.page_count() + 1, {}, nullptr).code() == Code::kInvalidArgument);  // page 11 neither given nor kept
  const std::vector<engine::PageId> unordered{3, 2};
  std::vector<std::uint8_t> two(2 * 4096, 0);
  CHECK(arena.ApplyPages(arena.page_count(), unordered, two.data()).code() == Code::kInvalidArgument);
  REQUIRE(arena.page_count() == before.size() / 4096);
  CHECK(std::memcmp(arena.bytes().data(), before.data(), before.size()) == 0);
}

}  // namespace
}  // namespace keepstate::persistence
