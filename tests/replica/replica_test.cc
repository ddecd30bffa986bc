// Replica tests over a MemoryRecordStore: open, commit (natively and the
// browser's way, the head check inside the write), catch-up from an open
// Replica (copying or in place, with manifests left unread), the change
// diff, export and import adoption, and the stateless head check — what the
// C ABI (js-bindings/exports.cc) converts and the JS tests rely on.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "keepstate/persistence/format.h"
#include "keepstate/persistence/record_store.h"
#include "keepstate/replica/replica.h"

namespace keepstate::replica {
namespace {

using persistence::MemoryRecordStore;
using persistence::OpenReport;
using persistence::PersisterOptions;
using Entries = std::map<std::string, std::string>;
using Changes = std::map<std::string, std::optional<std::string>>;

PersisterOptions Options(std::uint64_t writer) {
  PersisterOptions o;
  o.store_id = 3;
  o.writer_id = writer;
  o.page_size = 4096;
  return o;
}

std::string Key(int i) {
  char b[16];
  std::snprintf(b, sizeof b, "k%06d", i);
  return b;
}

// A value of `n` pseudo-random letters.
std::string Value(std::mt19937_64& rng, std::size_t n) {
  std::string v(n, 'a');
  for (char& c : v) c = static_cast<char>('a' + rng() % 26);
  return v;
}

Entries EntriesOf(const Replica& r) {
  Entries out;
  const Status scanned = r.Scan(false, {}, [&](std::string_view k, std::string_view v) {
    out.emplace(k, v);
    return true;
  });
  REQUIRE(scanned.ok());
  return out;
}

// A ChangeFn that records each change into `out`.
ChangeFn Collect(Changes* out) {
  return [out](std::string_view k, std::optional<std::string_view> v) {
    (*out)[std::string(k)] = v ? std::optional<std::string>(*v) : std::nullopt;
  };
}

std::vector<std::uint8_t> Bytes(Replica& r) {
  const auto bytes = r.store()->arena().bytes();
  return {bytes.begin(), bytes.end()};
}

// How OpenFed feeds the records, and what it saw.
struct Feed {
  std::string unread_below;  // manifests with smaller keys are loaded unread
  int unread = 0;            // how many were
  int packs = 0;             // packs asked for
};

// Opens `r` over `records` fed one record and one pack at a time, as the
// browser does; with `base`, a catch-up from it (in place or copying).
Result<OpenReport> OpenFed(Replica& r, MemoryRecordStore& records, Replica* base = nullptr, bool in_place = false,
                           Feed* feed = nullptr) {
  Feed ignored;
  Feed& f = feed != nullptr ? *feed : ignored;
  for (RecordKind kind : {RecordKind::kHead, RecordKind::kManifest, RecordKind::kPack}) {
    const std::vector<std::string> keys = records.List(kind).value();
    for (const std::string& key : keys) {
      if (kind == RecordKind::kManifest && key < f.unread_below) {
        ++f.unread;
        REQUIRE(r.LoadUnread(kind, key).ok());
        continue;
      }
      const std::vector<std::uint8_t> bytes =
          kind == RecordKind::kPack ? std::vector<std::uint8_t>{} : records.Get(kind, key).value();
      REQUIRE(r.Load(kind, key, bytes).ok());
    }
  }
  Result<OpenProgress> p = base != nullptr ? r.OpenFrom(*base, in_place) : r.Open();
  while (p.ok() && p->need) {
    ++f.packs;
    Result<std::vector<std::uint8_t>> pack = records.Get(RecordKind::kPack, persistence::PackKey(*p->need));
    p = r.AddPack(pack.ok() ? std::optional(std::span<const std::uint8_t>(*pack)) : std::nullopt);
  }
  if (!p.ok()) return p.status();
  return std::move(p->report);
}

// A writer holding `keys` keys committed as version 1.
struct Writer {
  explicit Writer(MemoryRecordStore& records, int keys, std::uint64_t seed) : records(records), rng(seed) {
    Reopen();
    for (int i = 0; i < keys; ++i) REQUIRE(r->Put(false, Key(i), Value(rng, 60)).ok());
    count = keys;
    REQUIRE(r->Commit(records, 1).ok());
  }
  // A new replica of the stored state (after another writer committed).
  void Reopen() {
    r = std::make_unique<Replica>(Options(1));
    REQUIRE(r->Restore(records).ok());
  }
  // Rewrites `n` random keys, deletes one and adds one, and commits.
  void Step(int n) {
    for (int i = 0; i < n; ++i) REQUIRE(r->Put(false, Key(static_cast<int>(rng() % count)), Value(rng, 60)).ok());
    r->Delete(false, Key(static_cast<int>(rng() % count))).IgnoreError();
    REQUIRE(r->Put(false, Key(count++), Value(rng, 60)).ok());
    REQUIRE(r->Commit(records, r->version() + 1).ok());
  }
  MemoryRecordStore& records;
  std::mt19937_64 rng;
  std::unique_ptr<Replica> r;
  int count = 0;
};

// A store with a writer of `keys` keys at version 1, and a follower opened on it.
struct Follower {
  Follower(int keys, std::uint64_t seed) : w(records, keys, seed) { REQUIRE(b.Restore(records).ok()); }
  MemoryRecordStore records;
  Writer w;
  Replica b{Options(2)};
};

TEST_CASE("replica: commits reopen with the same entries and bytes, fed one pack at a time or read at once", "[replica]") {
  MemoryRecordStore records;
  Writer w(records, 3000, 1);
  for (int i = 0; i < 4; ++i) w.Step(30);
  CHECK(w.r->version() == 5);
  CHECK_FALSE(w.r->dirty());
  Replica b(Options(2)), c(Options(3));
  REQUIRE(b.Restore(records).ok());
  Result<OpenReport> fed = OpenFed(c, records);
  REQUIRE(fed.ok());
  CHECK(fed->restored_version == 5);
  CHECK(fed->failures.empty());
  CHECK(EntriesOf(b) == EntriesOf(*w.r));
  CHECK(Bytes(b) == Bytes(*w.r));
  CHECK(Bytes(c) == Bytes(*w.r));
}

TEST_CASE("replica: before it opens, every operation of an open state is closed", "[replica]") {
  Replica r(Options(1));
  std::string v;
  CHECK(r.Get(false, "k", &v).code() == Code::kClosed);
  CHECK(r.Put(false, "k", "v").code() == Code::kClosed);
  CHECK(r.Begin().code() == Code::kClosed);
  CHECK(r.Capture(0).code() == Code::kClosed);
  CHECK(r.ReadManifestsFrom().status().code() == Code::kClosed);
  CHECK(r.BeginExport(0).status().code() == Code::kClosed);
  CHECK(r.AddPack(std::nullopt).status().code() == Code::kClosed);  // no pack was asked for
  CHECK(r.schema_version(false) == 0);
  CHECK_FALSE(r.batch().has_value());
}

TEST_CASE("replica: writes mark the state dirty — a transaction's only at its end, and only if it wrote", "[replica]") {
  MemoryRecordStore records;
  Replica r(Options(1));
  REQUIRE(r.Restore(records).ok());
  CHECK_FALSE(r.dirty());
  CHECK(r.Capture(0).code() == Code::kNotFound);  // nothing to commit
  REQUIRE(r.Begin().ok());
  CHECK(r.Begin().code() == Code::kBusy);
  REQUIRE(r.Put(true, "a", "1").ok());
  CHECK(r.Put(false, "b", "2").code() == Code::kBusy);  // the transaction holds the store
  std::string v;
  CHECK(r.Get(true, "a", &v).ok());
  CHECK(r.Get(false, "a", &v).code() == Code::kNotFound);  // not yet applied
  CHECK_FALSE(r.dirty());
  REQUIRE(r.End(false).ok());  // aborted
  CHECK_FALSE(r.dirty());
  CHECK(r.Has(false, "a").code() == Code::kNotFound);
  REQUIRE(r.Begin().ok());
  REQUIRE(r.End(true).ok());  // committed, wrote nothing
  CHECK_FALSE(r.dirty());
  REQUIRE(r.Begin().ok());
  REQUIRE(r.SetSchemaVersion(4).ok());
  REQUIRE(r.Put(true, "a", "1").ok());
  CHECK(r.schema_version(true) == 4);
  CHECK(r.schema_version(false) == 0);
  REQUIRE(r.End(true).ok());
  CHECK(r.dirty());
  CHECK(r.schema_version(false) == 4);
  CHECK(r.End(true).code() == Code::kClosed);  // none open
  CHECK(r.Delete(false, "zz").code() == Code::kNotFound);
  REQUIRE(r.Commit(records, 1).ok());
  CHECK_FALSE(r.dirty());
  REQUIRE(r.Delete(false, "a").ok());
  CHECK(r.dirty());
}

TEST_CASE("replica: the browser's commit runs the head check inside the write — a conflict leaves the state dirty",
          "[replica]") {
  MemoryRecordStore records;
  Writer w(records, 200, 2);
  Replica other(Options(2));
  REQUIRE(other.Restore(records).ok());
  REQUIRE(w.r->Put(false, "mine", "1").ok());
  REQUIRE(w.r->Capture(10).ok());
  CHECK(w.r->Capture(11).code() == Code::kBusy);  // one commit in flight
  CHECK(w.r->dirty());
  // The other writer commits first.
  REQUIRE(other.Put(false, "theirs", "2").ok());
  REQUIRE(other.Commit(records, 12).ok());
  const std::vector<std::uint8_t> stored = *records.Mutable(RecordKind::kHead, std::string(persistence::kHeadKey));
  double actual = 0;
  const Status checked = w.r->CheckHead(std::span<const std::uint8_t>(stored), &actual);
  CHECK(checked.code() == Code::kConflict);
  CHECK(actual == 2);
  REQUIRE(w.r->CommitDone(checked).ok());
  CHECK(w.r->dirty());
  CHECK(w.r->version() == 1);
  CHECK(w.r->CommitDone(Status::Ok()).code() == Code::kClosed);  // none in flight
  // Caught up, the same work commits: the check passes against the head it is based on.
  Replica again(Options(1));
  REQUIRE(again.Restore(records).ok());
  REQUIRE(again.Put(false, "mine", "1").ok());
  REQUIRE(again.Capture(13).ok());
  const std::optional<persistence::WriteBatch> batch = again.batch();
  REQUIRE(batch.has_value());
  REQUIRE(again.CheckHead(std::span<const std::uint8_t>(stored), &actual).ok());
  REQUIRE(records.Apply(*batch).ok());
  REQUIRE(again.CommitDone(Status::Ok()).ok());
  CHECK(again.version() == 3);
  Replica reader(Options(4));
  REQUIRE(reader.Restore(records).ok());
  CHECK(EntriesOf(reader).count("mine") == 1);
  CHECK(EntriesOf(reader).count("theirs") == 1);
}

TEST_CASE("replica: a catch-up taking unchanged pages from an open replica equals a full open, reading only changed packs",
          "[replica]") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    INFO("seed " << seed);
    Follower f(6000, seed);
    auto& [records, w, b] = f;
    // The follower has local work of its own...
    for (int i = 0; i < 20; ++i) REQUIRE(b.Put(false, "local" + std::to_string(i), "x").ok());
    // ...while the writer commits a few small changes.
    for (int i = 0; i < 3; ++i) w.Step(3);
    Replica caught(Options(2)), full(Options(3));
    Feed based, whole;
    Result<OpenReport> report = OpenFed(caught, records, &b, /*in_place=*/false, &based);
    REQUIRE(report.ok());
    REQUIRE(OpenFed(full, records, nullptr, false, &whole).ok());
    CHECK(report->restored_version == 4);
    CHECK_FALSE(report->in_place);
    CHECK(Bytes(caught) == Bytes(full));
    CHECK(EntriesOf(caught) == EntriesOf(*w.r));
    CHECK_FALSE(caught.dirty());
    REQUIRE(caught.read_pages().has_value());
    CHECK_FALSE(full.read_pages().has_value());
    const std::uint32_t pages = full.store()->arena().page_count();
    CHECK(caught.read_pages()->size() < pages / 2);
    CHECK(based.packs <= whole.packs);
    CHECK(caught.base_id() == b.id());
    // The diff from the state it left: the writer's changes and the follower's dropped local work.
    Changes diff, compared;
    REQUIRE(caught.DiffFrom(b.id(), &b, Collect(&diff)).ok());
    CHECK(diff.count("local0") == 1);
    CHECK(diff["local0"] == std::nullopt);
    REQUIRE(full.DiffFrom(b.id(), &b, Collect(&compared)).ok());  // the same, by comparing every page
    CHECK(diff == compared);
    CHECK(diff.size() >= 20);
    // Pending work replayed on top (a rebase) is in the diff too, though those pages were not read.
    for (int i = 0; i < 5; ++i) REQUIRE(caught.Put(false, Key(i * 1000 + 7), "replayed").ok());
    Changes replayed;
    REQUIRE(caught.DiffFrom(b.id(), &b, Collect(&replayed)).ok());
    for (int i = 0; i < 5; ++i) CHECK(replayed[Key(i * 1000 + 7)] == std::optional<std::string>("replayed"));
    // The caught-up replica commits on top of the newest version.
    REQUIRE(caught.Put(false, "after", "1").ok());
    REQUIRE(caught.Commit(records, 100).ok());
    CHECK(caught.version() == 5);
  }
}

TEST_CASE("replica: a catch-up in place stages only the changed pages, and adopting them gives the full open's state",
          "[replica]") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    INFO("seed " << seed);
    Follower f(20000, seed);  // a follower with no work of its own, watching some keys
    auto& [records, w, b] = f;
    REQUIRE(b.Watch({engine::KeyRange{"k000", "k002", true}}).ok());
    for (int i = 0; i < 2 + static_cast<int>(seed % 2); ++i) w.Step(seed == 2 ? 200 : 4);
    REQUIRE(w.r->Put(false, Key(5), "watched").ok());
    REQUIRE(w.r->Commit(records, 50).ok());
    Replica caught(Options(2));
    Result<OpenReport> report = OpenFed(caught, records, &b, /*in_place=*/true);
    REQUIRE(report.ok());
    CHECK(report->in_place);
    CHECK(caught.staged());
    CHECK_FALSE(caught.open());
    REQUIRE(caught.read_pages().has_value());
    if (seed != 2) CHECK(caught.read_pages()->size() < report->page_count / 5);  // small changes
    REQUIRE(caught.AdoptInPlace(b).ok());
    CHECK_FALSE(b.open());  // its arena is the caught-up replica's now
    CHECK(caught.open());
    Replica full(Options(3));
    REQUIRE(full.Restore(records).ok());
    CHECK(Bytes(caught) == Bytes(full));
    CHECK(EntriesOf(caught) == EntriesOf(*w.r));
    // The watched keys that changed, kept by the adoption, given once.
    Changes diff;
    REQUIRE(caught.DiffFrom(b.id(), nullptr, Collect(&diff)).ok());
    CHECK(diff.count(Key(5)) == 1);
    CHECK(diff[Key(5)] == std::optional<std::string>("watched"));
    for (const auto& [k, v] : diff) CHECK((k >= "k000" && k < "k002"));
    CHECK(caught.DiffFrom(b.id(), nullptr, Collect(&diff)).code() == Code::kInvalidArgument);  // the state before is gone
    // The adopted replica commits from the base's arena.
    REQUIRE(caught.Put(false, "after", "1").ok());
    REQUIRE(caught.Commit(records, 100).ok());
    Replica after(Options(4));
    REQUIRE(after.Restore(records).ok());
    CHECK(Bytes(after) == Bytes(caught));
  }
}

TEST_CASE("replica: an in-place catch-up whose base changed meanwhile is refused, and nothing changes", "[replica]") {
  Follower f(2000, 4);
  auto& [records, w, b] = f;
  w.Step(5);
  Replica caught(Options(2)), stranger(Options(5));
  REQUIRE(OpenFed(caught, records, &b, /*in_place=*/true).ok());
  REQUIRE(stranger.Restore(records).ok());
  CHECK(caught.AdoptInPlace(stranger).code() == Code::kInvalidArgument);  // not its base
  REQUIRE(b.Put(false, "local", "1").ok());
  REQUIRE(b.Capture(9).ok());  // a commit in flight: its pages are clean, the state is not
  const std::vector<std::uint8_t> before = Bytes(b);
  CHECK(caught.AdoptInPlace(b).code() == Code::kBusy);
  REQUIRE(b.CommitDone(Status::Conflict("lost")).ok());  // its pages are dirty again
  CHECK(caught.AdoptInPlace(b).code() == Code::kBusy);
  CHECK(b.open());
  CHECK(Bytes(b) == before);
  CHECK_FALSE(caught.open());
  CHECK(b.dirty());
  // Opened again without in_place, it copies what it can.
  Replica again(Options(2));
  REQUIRE(OpenFed(again, records, &b, /*in_place=*/false).ok());
  CHECK(EntriesOf(again) == EntriesOf(*w.r));
}

TEST_CASE("replica: a catch-up leaves unread the manifests its base holds decoded, and equals a full open", "[replica]") {
  MemoryRecordStore records;
  Writer w(records, 4000, 5);
  for (int i = 0; i < 3; ++i) w.Step(3);
  auto b = std::make_unique<Replica>(Options(2));
  REQUIRE(b->Restore(records).ok());
  for (int round = 0; round < 4; ++round) {
    INFO("round " << round);
    for (int i = 0; i < 1 + round % 3; ++i) w.Step(round == 2 ? 2000 : 3);
    const std::string from = b->ReadManifestsFrom().value();
    Feed feed{from};
    auto caught = std::make_unique<Replica>(Options(2));
    const bool in_place = round % 2 == 0;
    Result<OpenReport> report = OpenFed(*caught, records, b.get(), in_place, &feed);
    REQUIRE(report.ok());
    if (round == 0) CHECK(feed.unread >= 1);  // the full manifest of version 1
    if (in_place) REQUIRE(caught->AdoptInPlace(*b).ok());
    Replica full(Options(3));
    REQUIRE(full.Restore(records).ok());
    CHECK(report->restored_version == w.r->version());
    CHECK(Bytes(*caught) == Bytes(full));
    b = std::move(caught);
    if (round == 1) {  // the follower commits too: its own manifest is not cached, so it is read
      REQUIRE(b->Put(false, "follower", "1").ok());
      REQUIRE(b->Commit(records, 1000).ok());
      w.Reopen();  // the writer catches up to commit again
      CHECK(EntriesOf(*w.r).count("follower") == 1);
    }
  }
}

TEST_CASE("replica: a catch-up whose unread manifest was rewritten under the same key fails NotFound, never adopts",
          "[replica]") {
  MemoryRecordStore records;
  Writer w(records, 3000, 7);
  for (int i = 0; i < 2; ++i) w.Step(3);
  Replica b(Options(2));
  REQUIRE(b.Restore(records).ok());
  const std::string from = b.ReadManifestsFrom().value();
  REQUIRE(from > persistence::ManifestKey(1));  // version 1's full manifest would be left unread
  // Another line of the store replaces every record: its version 1 is another
  // full manifest under the same key, and its head is newer than b's.
  MemoryRecordStore other;
  Writer w2(other, 3000, 8);
  for (int i = 0; i < 4; ++i) w2.Step(3);
  records = std::move(other);
  Replica caught(Options(2));
  Feed feed{from};
  Result<OpenReport> failed = OpenFed(caught, records, &b, false, &feed);
  CHECK(feed.unread >= 1);
  CHECK(failed.status().code() == Code::kNotFound);  // the caller reads every manifest and opens again
  CHECK_FALSE(caught.open());
  Replica again(Options(2));
  Result<OpenReport> report = OpenFed(again, records, &b);
  REQUIRE(report.ok());
  CHECK(report->restored_version == 5);
  CHECK(report->failures.empty());
  CHECK(EntriesOf(again) == EntriesOf(*w2.r));
}

// The snapshot file of `r`'s committed state, read in chunks of `chunk` bytes.
std::vector<std::uint8_t> Export(Replica& r, std::size_t chunk) {
  Result<std::uint64_t> size = r.BeginExport(1234);
  REQUIRE(size.ok());
  std::vector<std::uint8_t> file;
  std::vector<std::uint8_t> buffer(chunk);
  for (;;) {
    Result<std::size_t> n = r.ReadExport(buffer);
    REQUIRE(n.ok());
    if (*n == 0) break;
    file.insert(file.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  r.EndExport();
  CHECK(file.size() == *size);
  return file;
}

TEST_CASE("replica: an exported state, imported into a larger one, commits and reopens as the file's state",
          "[replica]") {
  MemoryRecordStore source_records;
  Writer source(source_records, 500, 9);
  CHECK(source.r->Put(false, "x", "1").ok());
  CHECK(source.r->BeginExport(0).status().code() == Code::kBusy);  // uncommitted changes
  REQUIRE(source.r->Commit(source_records, 2).ok());
  const std::vector<std::uint8_t> file = Export(*source.r, 1000);

  MemoryRecordStore records;
  Writer target(records, 4000, 10);  // more pages than the file's state
  const std::uint32_t target_pages = target.r->store()->arena().page_count();
  Import import(file.size());
  for (std::size_t at = 0; at < file.size(); at += 777) {
    REQUIRE(import.Add(std::span(file).subspan(at, std::min<std::size_t>(777, file.size() - at))).ok());
  }
  CHECK(target.r->AdoptImport(import).code() == Code::kInvalidArgument);  // not verified yet
  REQUIRE(import.Finish().ok());
  CHECK(import.Add(std::span(file).first(1)).code() == Code::kInvalidArgument);  // finished
  REQUIRE(import.verified());
  CHECK(import.info().store_version == 2);
  CHECK(import.info().entry_count == 501);
  CHECK(import.info().page_size == 4096);
  REQUIRE(target.r->Begin().ok());
  CHECK(target.r->AdoptImport(import).code() == Code::kBusy);  // a transaction is open
  REQUIRE(target.r->End(false).ok());
  REQUIRE(target.r->AdoptImport(import).ok());
  CHECK_FALSE(import.verified());  // taken
  CHECK(target.r->dirty());
  // The pages beyond the file's state were reserved and freed: every page of the state it replaced is rewritten.
  CHECK(target.r->store()->arena().page_count() == target_pages);
  CHECK(target.r->store()->arena().DirtyPages().size() == target_pages);
  CHECK(EntriesOf(*target.r) == EntriesOf(*source.r));
  REQUIRE(target.r->Commit(records, 3).ok());
  CHECK(target.r->version() == 2);
  Replica reopened(Options(5));
  REQUIRE(reopened.Restore(records).ok());
  CHECK(EntriesOf(reopened) == EntriesOf(*source.r));
}

TEST_CASE("replica: watchers of a state that adopts an import hear every key it changed", "[replica]") {
  MemoryRecordStore source_records, records;
  Writer source(source_records, 300, 21);
  Writer target(records, 300, 21);  // the same keys and values
  REQUIRE(source.r->Put(false, Key(7), "changed").ok());
  REQUIRE(source.r->Put(false, "zz-new", "added").ok());
  REQUIRE(source.r->Delete(false, Key(9)).ok());
  REQUIRE(source.r->Commit(source_records, 2).ok());
  const std::vector<std::uint8_t> file = Export(*source.r, 4096);
  Import import(file.size());
  REQUIRE(import.Add(file).ok());
  REQUIRE(import.Finish().ok());

  REQUIRE(target.r->Watch({engine::KeyRange{}}).ok());  // every key
  REQUIRE(target.r->Put(false, Key(3), "mine, not taken yet").ok());
  REQUIRE(target.r->AdoptImport(import).ok());
  std::vector<std::pair<std::string, std::optional<std::string>>> heard;
  REQUIRE(target.r->TakeChanges([&](std::string_view k, std::optional<std::string_view> v) {
    heard.emplace_back(k, v ? std::optional<std::string>(*v) : std::nullopt);
  }).ok());
  const std::vector<std::pair<std::string, std::optional<std::string>>> expected{
      {Key(3), EntriesOf(*source.r).at(Key(3))}, {Key(7), "changed"}, {Key(9), std::nullopt}, {"zz-new", "added"}};
  CHECK(heard == expected);
  // Still watching: the next write is heard.
  REQUIRE(target.r->Put(false, Key(1), "after").ok());
  heard.clear();
  REQUIRE(target.r->TakeChanges([&](std::string_view k, std::optional<std::string_view>) { heard.emplace_back(k, std::nullopt); }).ok());
  CHECK(heard.size() == 1);
}

TEST_CASE("replica: a damaged file is refused and a file of another page size is not adopted", "[replica]") {
  MemoryRecordStore records;
  Writer w(records, 300, 11);
  std::vector<std::uint8_t> file = Export(*w.r, 4096);
  std::vector<std::uint8_t> damaged = file;
  damaged[damaged.size() / 2] ^= 0x40;
  Import bad(damaged.size());
  const Status added = bad.Add(damaged);
  CHECK((added.code() == Code::kCorruption || bad.Finish().code() == Code::kCorruption));
  PersisterOptions big = Options(6);
  big.page_size = 8192;
  MemoryRecordStore other;
  Replica r(big);
  REQUIRE(r.Restore(other).ok());
  Import good(std::nullopt);
  REQUIRE(good.Add(file).ok());
  REQUIRE(good.Finish().ok());
  CHECK(r.AdoptImport(good).code() == Code::kInvalidArgument);
  CHECK(good.verified());  // still there to adopt elsewhere
}

TEST_CASE("replica: the stateless head check is CheckStoredHead with the stored version", "[replica]") {
  const std::vector<std::uint8_t> v3 = persistence::EncodeHead({persistence::kFormatVersion, 3, 2, 7, 99});
  const std::vector<std::uint8_t> v3_other = persistence::EncodeHead({persistence::kFormatVersion, 3, 2, 8, 99});
  const std::vector<std::uint8_t> v4 = persistence::EncodeHead({persistence::kFormatVersion, 4, 3, 7, 99});
  const std::vector<std::uint8_t> newer = persistence::EncodeHead({persistence::kFormatVersion + 1, 9, 8, 7, 99});
  std::vector<std::uint8_t> garbage = v4;
  garbage[20] ^= 1;  // checksum mismatch
  using View = std::span<const std::uint8_t>;
  double actual = 42;
  CHECK(CheckHead(std::nullopt, std::nullopt, &actual).ok());
  CHECK(actual == 0);
  CHECK(CheckHead(View(v3), View(v3), &actual).ok());
  CHECK(actual == 3);
  Status s = CheckHead(View(v3), View(v4), &actual);
  CHECK(s.code() == Code::kConflict);
  CHECK(actual == 4);
  CHECK(s.message() == "another writer committed: the stored head is at version 4, this state is based on version 3");
  CHECK(CheckHead(View(v3), View(v3_other), &actual).code() == Code::kConflict);  // same version, another writer
  CHECK(actual == 3);
  CHECK(CheckHead(std::nullopt, View(v3), &actual).code() == Code::kConflict);
  s = CheckHead(View(v3), std::nullopt, &actual);
  CHECK(s.code() == Code::kConflict);
  CHECK(s.message().find("no head") != std::string::npos);
  CHECK(actual == 0);
  CHECK(CheckHead(View(v4), View(garbage), &actual).code() == Code::kConflict);
  CHECK(actual == -1);
  CHECK(CheckHead(View(garbage), View(garbage), &actual).ok());  // exactly the head it saw
  CHECK(CheckHead(View(v3), View(newer), &actual).code() == Code::kUnsupported);
  CHECK(actual == -1);
  // The version a head claims, checksum or not; 0 for what is not a head.
  CHECK(HeadVersion(v4) == 4);
  CHECK(HeadVersion(garbage) == 4);
  CHECK(HeadVersion(View(v4).first(40)) == 0);
  std::vector<std::uint8_t> no_magic = v4;
  no_magic[0] ^= 1;
  CHECK(HeadVersion(no_magic) == 0);
}

TEST_CASE("replica: mutator calls find their replica through the host, and their writes mark it dirty", "[replica]") {
  MemoryRecordStore records;
  Replica r(Options(1));
  std::map<std::uint32_t, Replica*> table{{r.id(), &r}};
  ReplicaHost host([&](std::uint32_t id) { return table.count(id) ? table[id] : nullptr; });
  CHECK(host.Find(r.id()).status().code() == Code::kClosed);  // not open yet
  REQUIRE(r.Restore(records).ok());
  REQUIRE(host.Find(r.id()).ok());
  CHECK(*host.Find(r.id()) == r.store());
  CHECK(host.Find(r.id() + 1000).status().code() == Code::kClosed);
  CHECK_FALSE(r.dirty());
  host.Changed(r.id());
  CHECK(r.dirty());
  Replica other(Options(2));
  CHECK(other.id() != r.id());
}

}  // namespace
}  // namespace keepstate::replica
