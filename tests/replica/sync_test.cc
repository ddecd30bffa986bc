// A synced Replica's journal (docs/sync.md; replica/src/sync.cc): blind
// writes and mutator calls journaled with the writes, every local write
// marked, the journal and marks hidden from reads, a pull adopted in one
// transaction, and a server snapshot adopted without losing the journal.
#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keepstate/persistence/record_store.h"
#include "keepstate/replica/replica.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/sdk/module.h"

namespace keepstate::replica {
namespace {

using Entries = std::map<std::string, std::string>;
using Pending = std::vector<std::pair<std::uint64_t, std::string>>;  // id, name

persistence::PersisterOptions Options() {
  persistence::PersisterOptions o;
  o.store_id = 9;
  o.writer_id = 1;
  o.page_size = 4096;
  return o;
}

Entries EntriesOf(const Replica& r) {
  Entries out;
  REQUIRE(r.Scan(false, {}, [&](std::string_view k, std::string_view v) { return out.emplace(k, v), true; }).ok());
  return out;
}

Pending PendingOf(const Replica& r, std::uint64_t after = 0) {
  Pending out;
  REQUIRE(r.SyncPending(after, [&](std::uint64_t id, std::string_view name, std::span<const std::uint8_t>) {
             return out.emplace_back(id, name), true;
           }).ok());
  return out;
}

std::vector<std::string> Marked(const Replica& r) {
  std::vector<std::string> out;
  REQUIRE(r.SyncMarked([&](std::string_view k) { out.emplace_back(k); }).ok());
  return out;
}

std::unique_ptr<Replica> Opened(persistence::MemoryRecordStore& records) {
  auto r = std::make_unique<Replica>(Options());
  REQUIRE(r->Restore(records).ok());
  REQUIRE(r->open());
  return r;
}

// Writes "m/<args>" = "x" (a mutator whose writes the engine must mark).
sdk::Task<Result<sdk::Bytes>> WriteArgs(sdk::Context& ctx, sdk::Args args) {
  const std::string key = "m/" + std::string(args.begin(), args.end());
  Status s = ctx.Write([&](engine::Txn& txn) { return txn.Put(key, "x"); });
  if (!s.ok()) co_return s;
  co_return sdk::Bytes{};
}

}  // namespace

TEST_CASE("a synced store journals its blind writes and marks them — reads never show the journal", "[sync]") {
  persistence::MemoryRecordStore records;
  auto r = Opened(records);
  REQUIRE(r->Put(false, "before", "1").ok());
  CHECK_FALSE(r->synced());
  CHECK(r->SyncState().status().IsNotFound());
  CHECK(r->SyncInit("bad id!").code() == Code::kInvalidArgument);
  REQUIRE(r->SyncInit("client-0001").ok());
  CHECK(r->synced());
  CHECK(r->SyncInit("client-0001").ok());                           // again, same client: nothing to do
  CHECK(r->SyncInit("client-0002").code() == Code::kConflict);      // another client: refused

  // What the store held before it synced is journaled as a put.
  CHECK(PendingOf(*r) == Pending{{1, "keepstate.put"}});
  REQUIRE(r->Put(false, "a", "2").ok());
  REQUIRE(r->Delete(false, "before").ok());
  CHECK(r->Delete(false, "never").IsNotFound());  // nothing to delete: nothing journaled
  CHECK(PendingOf(*r) == Pending{{1, "keepstate.put"}, {2, "keepstate.put"}, {3, "keepstate.delete"}});
  CHECK(PendingOf(*r, 2) == Pending{{3, "keepstate.delete"}});
  CHECK(Marked(*r) == std::vector<std::string>{"a", "before"});
  CHECK(EntriesOf(*r) == Entries{{"a", "2"}});  // no 0xFF key shows
  engine::ScanOptions reverse;
  reverse.reverse = true;
  std::vector<std::string> backwards;
  REQUIRE(r->Scan(false, reverse, [&](std::string_view k, std::string_view) { return backwards.emplace_back(k), true; }).ok());
  CHECK(backwards == std::vector<std::string>{"a"});
  CHECK(r->SyncState()->next_mutation_id == 4);

  // A key leaves room for its mark.
  CHECK(r->Put(false, std::string(1023, 'k'), "v").code() == Code::kInvalidArgument);
  CHECK(r->Put(false, std::string(1022, 'k'), "v").ok());

  // The journal is committed with the writes, and comes back with them.
  REQUIRE(r->Commit(records, 1).ok());
  auto again = Opened(records);
  CHECK(again->synced());
  CHECK(PendingOf(*again).size() == 4);
  CHECK(again->SyncState()->client == "client-0001");
}

TEST_CASE("a mutator's writes in a synced store are marked by the engine", "[sync]") {
  static bool registered = sdk::Register("sync_test.write_args", WriteArgs).ok();
  REQUIRE(registered);
  persistence::MemoryRecordStore records;
  auto r = Opened(records);
  REQUIRE(r->SyncInit("client-0001").ok());
  const std::string args = "7";
  const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(args.data()), args.size());
  REQUIRE(r->Journal("sync_test.write_args", bytes).value() == 1);
  Replica* self = r.get();
  ReplicaHost host([&](std::uint32_t id) { return id == self->id() ? self : nullptr; });
  scheduler::Scheduler scheduler;
  sdk::CallQueue calls(&scheduler, &host);
  REQUIRE(calls.Start("sync_test.write_args", r->id(), bytes).ok());
  scheduler.RunUntilIdle();
  REQUIRE(calls.Take()->status.ok());
  CHECK(Marked(*r) == std::vector<std::string>{"m/7"});
  CHECK(r->dirty());
}

TEST_CASE("a pull is adopted in one transaction: the server's values, no marks, acknowledged mutations gone", "[sync]") {
  persistence::MemoryRecordStore records;
  auto r = Opened(records);
  REQUIRE(r->SyncInit("client-0001").ok());
  REQUIRE(r->Put(false, "a", "local").ok());    // 1
  REQUIRE(r->Put(false, "b", "local").ok());    // 2
  REQUIRE(r->Put(false, "c", "pending").ok());  // 3
  // The server ran 1 and 2 (and another client's write of "z"): its values
  // for everything that changed and everything marked.
  using Entry = std::pair<std::string_view, std::optional<std::string_view>>;
  const std::vector<Entry> entries = {{"a", "local"}, {"b", "server"}, {"c", std::nullopt}, {"z", "other"}};
  REQUIRE(r->ApplyPull(5, 2, entries).ok());
  CHECK(EntriesOf(*r) == Entries{{"a", "local"}, {"b", "server"}, {"z", "other"}});
  CHECK(Marked(*r).empty());
  CHECK(PendingOf(*r) == Pending{{3, "keepstate.put"}});
  const SyncMeta meta = r->SyncState().value();
  CHECK(meta.server_version == 5);
  CHECK(meta.last_mutation_id == 2);
  CHECK(meta.next_mutation_id == 4);
  // A pulled key in keepstate's space is refused, and nothing is applied.
  const std::vector<Entry> hostile = {{"q", "1"}, {"\xFFmeta", "x"}};
  CHECK(r->ApplyPull(6, 3, hostile).code() == Code::kInvalidArgument);
  CHECK(r->SyncState()->server_version == 5);
  CHECK(EntriesOf(*r).count("q") == 0);
  // Writes after a pull are marked again.
  REQUIRE(r->Put(false, "d", "1").ok());
  CHECK(Marked(*r) == std::vector<std::string>{"d"});
}

TEST_CASE("a synced store adopting its server's snapshot keeps its journal and drops its marks", "[sync]") {
  // The server's state, as a snapshot file.
  persistence::MemoryRecordStore server_records;
  auto server = Opened(server_records);
  REQUIRE(server->Put(false, "s", "server").ok());
  REQUIRE(server->Commit(server_records, 1).ok());
  const std::uint64_t size = server->BeginExport(1).value();
  std::vector<std::uint8_t> file(size);
  REQUIRE(server->ReadExport(file).value() == size);

  persistence::MemoryRecordStore records;
  auto r = Opened(records);
  REQUIRE(r->SyncInit("client-0001").ok());
  REQUIRE(r->Put(false, "mine", "1").ok());
  Import import(file.size());
  REQUIRE(import.Add(file).ok());
  REQUIRE(import.Finish().ok());
  REQUIRE(r->AdoptImport(import, /*keep_journal=*/true).ok());
  CHECK(EntriesOf(*r) == Entries{{"s", "server"}});
  CHECK(PendingOf(*r) == Pending{{1, "keepstate.put"}});
  CHECK(Marked(*r).empty());
  CHECK(r->synced());
  REQUIRE(r->Put(false, "after", "1").ok());
  CHECK(Marked(*r) == std::vector<std::string>{"after"});
}

}  // namespace keepstate::replica
