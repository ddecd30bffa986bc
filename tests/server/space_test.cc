// Space over SQLite and PostgreSQL: pushes are processed exactly once (a
// resend is skipped, a gap refused), failures are recorded and reported by
// push and pull, a pull gives the changed and the asked keys at the new
// version (or `full`), the snapshot round-trips, a client is bound to its
// identity, the state and the last ids survive a reopen, and two Spaces on
// one PostgreSQL database (two processes) apply every mutation once; the
// commit pipeline's steps: pushes queued while a group is written go into the
// next group, and a group whose write failed is not acknowledged; a
// statement that fails within a PostgreSQL commit's pipeline leaves nothing.
#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "keepstate/persistence/record_store.h"
#include "keepstate/replica/replica.h"
#include "keepstate/server/space.h"
#include "server_support.h"

namespace keepstate::server {
namespace {

using namespace testing;
using Values = std::map<std::string, std::optional<std::string>>;

constexpr char kAlice[] = "alice-client-1";
constexpr char kBob[] = "bob-client-0001";

std::unique_ptr<Space> OpenSpace(Database& db, const std::string& name, std::uint64_t writer = 1,
                                 Retention retention = {}) {
  Result<std::unique_ptr<SpaceStore>> store = db.Open(name, retention);
  REQUIRE(store.ok());
  Result<std::unique_ptr<Space>> space = Space::Open(std::move(*store), writer);
  INFO(space.status().ToString());
  REQUIRE(space.ok());
  return std::move(*space);
}

PushResult Push(Space& space, const std::string& client, std::vector<Mutation> mutations,
                const std::string& identity = "id-a") {
  return space.Push(PushRequest{client, std::move(mutations)}, identity);
}

// The values of `keys` at the space's version (a pull that changed nothing since).
Values Read(Space& space, std::vector<std::string> keys) {
  Result<PullResponse> pulled = space.Pull(PullRequest{"reader-000", space.version(), std::move(keys)});
  REQUIRE(pulled.ok());
  REQUIRE_FALSE(pulled->full);
  Values out;
  for (auto& [k, v] : pulled->entries) out[k] = v;
  return out;
}

std::vector<std::string> Keys(const PullResponse& r) {
  std::vector<std::string> keys;
  for (const auto& e : r.entries) keys.push_back(e.first);
  return keys;
}

TEMPLATE_TEST_CASE("space: pushes are applied exactly once, a resend is skipped, a gap refused", "[server]", Sqlite,
                   Postgres) {
  TestType backend;
  auto db = backend.Open();
  auto space = OpenSpace(*db, UniqueName("once"));
  CHECK(space->version() == 0);
  PushResult r = Push(*space, kAlice, {M(1, "open_account", OpenAccountArgs(1, 2, 100)), M(2, "transfer", TransferArgs(1, 2, 30))});
  REQUIRE(r.refusal == Refusal::kNone);
  CHECK(r.response.last_mutation_id == 2);
  CHECK(r.response.version == 1);
  CHECK(r.response.failed.empty());
  // The same push again (its answer was lost): nothing runs, nothing commits.
  r = Push(*space, kAlice, {M(1, "open_account", OpenAccountArgs(1, 2, 100)), M(2, "transfer", TransferArgs(1, 2, 30))});
  REQUIRE(r.refusal == Refusal::kNone);
  CHECK(r.response.last_mutation_id == 2);
  CHECK(r.response.version == 1);
  // A resend overlapping new work: only id 3 runs.
  r = Push(*space, kAlice, {M(2, "transfer", TransferArgs(1, 2, 30)), M(3, "transfer", TransferArgs(2, 1, 5))});
  REQUIRE(r.refusal == Refusal::kNone);
  CHECK(r.response.last_mutation_id == 3);
  CHECK(r.response.version == 2);
  Values v = Read(*space, {AccountKey(1), AccountKey(2)});
  CHECK(BalanceIn(v[AccountKey(1)]) == 75);
  CHECK(BalanceIn(v[AccountKey(2)]) == 125);
  // A gap: 409, nothing applied.
  r = Push(*space, kAlice, {M(5, "transfer", TransferArgs(1, 2, 1))});
  CHECK(r.refusal == Refusal::kGap);
  CHECK(space->version() == 2);
  CHECK(space->LastMutationId(kAlice) == 3);
  // Another client's ids are its own.
  r = Push(*space, kBob, {M(1, "transfer", TransferArgs(1, 2, 1))});
  REQUIRE(r.refusal == Refusal::kNone);
  CHECK(r.response.last_mutation_id == 1);
  CHECK(space->LastMutationId(kAlice) == 3);

  // Reopened (a restarted server): the state and the last ids are there.
  const std::string name = space->name();
  space.reset();
  auto again = OpenSpace(*db, name, 2);
  CHECK(again->version() == 3);
  CHECK(again->LastMutationId(kAlice) == 3);
  CHECK(again->LastMutationId(kBob) == 1);
  v = Read(*again, {AccountKey(1)});
  CHECK(BalanceIn(v[AccountKey(1)]) == 74);
  r = Push(*again, kAlice, {M(3, "transfer", TransferArgs(2, 1, 5))});
  CHECK(r.response.version == 3);  // a resend after the restart: still skipped
}

TEMPLATE_TEST_CASE("space: a failed mutation counts, changes nothing and is reported by push and pull", "[server]",
                   Sqlite, Postgres) {
  TestType backend;
  auto db = backend.Open();
  auto space = OpenSpace(*db, UniqueName("fail"));
  REQUIRE(Push(*space, kAlice, {M(1, "open_account", OpenAccountArgs(1, 2, 10))}).refusal == Refusal::kNone);
  const std::uint64_t before = space->version();
  PushResult r = Push(*space, kAlice,
                      {M(2, "transfer", TransferArgs(1, 2, 1000)), M(3, "no_such_mutator", ""),
                       M(4, "transfer", TransferArgs(1, 2, 4))});
  REQUIRE(r.refusal == Refusal::kNone);
  CHECK(r.response.last_mutation_id == 4);
  REQUIRE(r.response.failed.size() == 2);
  CHECK(r.response.failed[0].id == 2);
  CHECK(r.response.failed[0].code == "invalid-argument");
  CHECK(r.response.failed[0].message.find("insufficient funds") != std::string::npos);
  CHECK(r.response.failed[1].id == 3);
  Values v = Read(*space, {AccountKey(1)});
  CHECK(BalanceIn(v[AccountKey(1)]) == 6);
  // A resend of the failed ones reports them again (the answer was lost).
  r = Push(*space, kAlice, {M(2, "transfer", TransferArgs(1, 2, 1000)), M(3, "no_such_mutator", "")});
  CHECK(r.response.failed.size() == 2);
  // Pull: the failures above the client's last id at `since`.
  Result<PullResponse> p = space->Pull(PullRequest{kAlice, before, {}});
  REQUIRE(p.ok());
  CHECK(p->failed.size() == 2);
  CHECK(p->last_mutation_id == 4);
  p = space->Pull(PullRequest{kAlice, space->version(), {}});
  REQUIRE(p.ok());
  CHECK(p->failed.empty());
  p = space->Pull(PullRequest{kBob, before, {}});
  REQUIRE(p.ok());
  CHECK(p->failed.empty());  // another client's failures are not its own
}

TEMPLATE_TEST_CASE("space: a pull gives the changed and the asked keys at the new version, else full", "[server]",
                   Sqlite, Postgres) {
  TestType backend;
  auto db = backend.Open();
  Retention retention;
  retention.change_versions = 3;
  auto space = OpenSpace(*db, UniqueName("pull"), 1, retention);
  REQUIRE(Push(*space, kAlice, {M(1, "open_account", OpenAccountArgs(1, 4, 100))}).refusal == Refusal::kNone);
  const std::uint64_t v1 = space->version();
  REQUIRE(Push(*space, kAlice, {M(2, "transfer", TransferArgs(1, 2, 10))}).refusal == Refusal::kNone);

  Result<PullResponse> p = space->Pull(PullRequest{kAlice, v1, {AccountKey(4), "nothing-here"}});
  REQUIRE(p.ok());
  REQUIRE_FALSE(p->full);
  CHECK(p->version == v1 + 1);
  CHECK(p->last_mutation_id == 2);
  // Changed: the two accounts and the ledger; asked: account 4 and an absent key.
  CHECK(Keys(*p) == std::vector<std::string>{AccountKey(1), AccountKey(2), AccountKey(4), "ledger", "nothing-here"});
  CHECK(BalanceIn(p->entries[0].second) == 90);
  CHECK(BalanceIn(p->entries[1].second) == 110);
  CHECK(BalanceIn(p->entries[2].second) == 100);
  CHECK_FALSE(p->entries[4].second.has_value());

  // since 0: full (download the snapshot).
  p = space->Pull(PullRequest{kAlice, 0, {}});
  REQUIRE(p.ok());
  CHECK(p->full);
  CHECK(p->entries.empty());
  // Past the window of kept changes: full.
  for (std::uint64_t id = 3; id <= 6; ++id) {
    REQUIRE(Push(*space, kAlice, {M(id, "transfer", TransferArgs(1, 2, 1))}).refusal == Refusal::kNone);
  }
  p = space->Pull(PullRequest{kAlice, v1, {}});
  REQUIRE(p.ok());
  CHECK(p->full);
  p = space->Pull(PullRequest{kAlice, space->version() - 2, {}});
  REQUIRE(p.ok());
  CHECK_FALSE(p->full);
  CHECK(Keys(*p) == std::vector<std::string>{AccountKey(1), AccountKey(2), "ledger"});
  // A client ahead of the server starts over.
  p = space->Pull(PullRequest{kAlice, space->version() + 5, {}});
  REQUIRE(p.ok());
  CHECK(p->full);
}

std::string PutArgs(const std::string& key, const std::string& value) {
  std::string args(4, '\0');
  for (int i = 0; i < 4; ++i) args[i] = static_cast<char>((key.size() >> (8 * i)) & 0xff);
  return args + key + value;
}

TEMPLATE_TEST_CASE("space: the built-in blind writes keepstate.put and keepstate.delete run like any mutator",
                   "[server]", Sqlite, Postgres) {
  TestType backend;
  auto db = backend.Open();
  auto space = OpenSpace(*db, UniqueName("blind"));
  REQUIRE(Push(*space, kAlice, {M(1, "keepstate.put", PutArgs("z", "0"))}).refusal == Refusal::kNone);
  PushResult r = Push(*space, kAlice,
                      {M(2, "keepstate.put", PutArgs("a", "1")), M(3, "keepstate.put", PutArgs("b", "2")),
                       M(4, "keepstate.delete", "a"), M(5, "keepstate.put", "\x01")});
  REQUIRE(r.refusal == Refusal::kNone);
  REQUIRE(r.response.failed.size() == 1);  // truncated args
  CHECK(r.response.failed[0].id == 5);
  Result<PullResponse> p = space->Pull(PullRequest{kAlice, r.response.version - 1, {}});
  REQUIRE(p.ok());
  REQUIRE_FALSE(p->full);
  REQUIRE(p->entries.size() == 2);
  CHECK(p->entries[0] == std::pair<std::string, std::optional<std::string>>{"a", std::nullopt});
  CHECK(p->entries[1] == std::pair<std::string, std::optional<std::string>>{"b", "2"});
}

TEMPLATE_TEST_CASE("space: the snapshot is the committed state and imports into a replica", "[server]", Sqlite,
                   Postgres) {
  TestType backend;
  auto db = backend.Open();
  auto space = OpenSpace(*db, UniqueName("snap"));
  CHECK(space->Snapshot().status().code() == Code::kNotFound);
  REQUIRE(Push(*space, kAlice, {M(1, "open_account", OpenAccountArgs(1, 300, 7)), M(2, "transfer", TransferArgs(3, 4, 2))})
              .refusal == Refusal::kNone);
  Result<std::string> file = space->Snapshot();
  REQUIRE(file.ok());
  replica::Import import(file->size());
  REQUIRE(import.Add({reinterpret_cast<const std::uint8_t*>(file->data()), file->size()}).ok());
  REQUIRE(import.Finish().ok());
  persistence::MemoryRecordStore records;
  replica::Replica r(replica::Replica::OptionsFor(0, 0, 9));
  REQUIRE(r.Restore(records).ok());
  REQUIRE(r.AdoptImport(import).ok());
  std::string value;
  REQUIRE(r.Get(false, AccountKey(4), &value).ok());
  CHECK(BalanceIn(value) == 9);
  std::size_t accounts = 0;
  REQUIRE(r.Scan(false, {}, [&](std::string_view k, std::string_view) {
                 accounts += k.substr(0, 5) == "acct/";
                 return true;
               }).ok());
  CHECK(accounts == 300);
}

TEMPLATE_TEST_CASE("space: a client is bound to the identity of its first push", "[server]", Sqlite, Postgres) {
  TestType backend;
  auto db = backend.Open();
  auto space = OpenSpace(*db, UniqueName("bind"));
  REQUIRE(Push(*space, kAlice, {M(1, "open_account", OpenAccountArgs(1, 2, 10))}, "id-a").refusal == Refusal::kNone);
  PushResult r = Push(*space, kAlice, {M(2, "transfer", TransferArgs(1, 2, 1))}, "id-b");
  CHECK(r.refusal == Refusal::kForbidden);
  CHECK(space->LastMutationId(kAlice) == 1);
  // Still bound after a restart.
  const std::string name = space->name();
  space.reset();
  auto again = OpenSpace(*db, name);
  CHECK(Push(*again, kAlice, {M(2, "transfer", TransferArgs(1, 2, 1))}, "id-b").refusal == Refusal::kForbidden);
  CHECK(Push(*again, kAlice, {M(2, "transfer", TransferArgs(1, 2, 1))}, "id-a").refusal == Refusal::kNone);
}

TEMPLATE_TEST_CASE("space: queued pushes share one commit", "[server]", Sqlite, Postgres) {
  TestType backend;
  auto db = backend.Open();
  auto space = OpenSpace(*db, UniqueName("group"));
  REQUIRE(Push(*space, kAlice, {M(1, "open_account", OpenAccountArgs(1, 10, 1000))}).refusal == Refusal::kNone);
  const std::uint64_t before = space->version();
  std::vector<PushResult> results;
  for (int c = 0; c < 5; ++c) {
    const std::string client = "client-000" + std::to_string(c);
    std::vector<Mutation> ms;
    for (std::uint64_t id = 1; id <= 20; ++id) ms.push_back(M(id, "transfer", TransferArgs(c + 1, c + 2, 1)));
    space->Enqueue(PushRequest{client, std::move(ms)}, "id-" + std::to_string(c),
                   [&](PushResult r) { results.push_back(std::move(r)); });
  }
  space->Flush();
  REQUIRE(results.size() == 5);
  for (const PushResult& r : results) {
    CHECK(r.refusal == Refusal::kNone);
    CHECK(r.response.last_mutation_id == 20);
    CHECK(r.response.version == before + 1);
  }
  Values v = Read(*space, {AccountKey(1), AccountKey(6)});
  CHECK(BalanceIn(v[AccountKey(1)]) == 980);
  CHECK(BalanceIn(v[AccountKey(6)]) == 1020);
}

TEMPLATE_TEST_CASE("space: pushes queued while a group is written go into the next group, answered after its commit",
                   "[server]", Sqlite, Postgres) {
  TestType backend;
  auto db = backend.Open();
  auto space = OpenSpace(*db, UniqueName("pipeline"));
  REQUIRE(Push(*space, kAlice, {M(1, "open_account", OpenAccountArgs(1, 10, 1000))}).refusal == Refusal::kNone);
  const std::uint64_t before = space->version();
  std::optional<PushResult> a, b;
  space->Enqueue(PushRequest{"client-0000", {M(1, "transfer", TransferArgs(1, 2, 10))}}, "id-0",
                 [&](PushResult r) { a = std::move(r); });
  std::unique_ptr<Space::GroupCommit> first = space->Prepare();
  REQUIRE(first != nullptr);
  CHECK(space->committing());
  // While the group is written: a push queues for the next group, reads wait.
  space->Enqueue(PushRequest{"client-0001", {M(1, "transfer", TransferArgs(3, 4, 5))}}, "id-1",
                 [&](PushResult r) { b = std::move(r); });
  CHECK(space->Prepare() == nullptr);
  CHECK(space->Pull(PullRequest{"reader-000", before, {}}).status().code() == Code::kBusy);
  CHECK(space->Snapshot().status().code() == Code::kBusy);
  // Written on another thread, as the server's commit pipeline does.
  Status written;
  std::thread writer([&] { written = first->Write(); });
  writer.join();
  REQUIRE(written.ok());
  CHECK_FALSE(a.has_value());  // answered by Finish, not by the write
  CHECK(space->Finish(std::move(first), written) == nullptr);
  REQUIRE(a.has_value());
  CHECK(a->refusal == Refusal::kNone);
  CHECK(a->response.version == before + 1);
  CHECK_FALSE(b.has_value());
  CHECK_FALSE(space->committing());
  space->Flush();
  REQUIRE(b.has_value());
  CHECK(b->refusal == Refusal::kNone);
  CHECK(b->response.version == before + 2);
  Values v = Read(*space, {AccountKey(1), AccountKey(2), AccountKey(3), AccountKey(4)});
  CHECK(BalanceIn(v[AccountKey(1)]) == 990);
  CHECK(BalanceIn(v[AccountKey(2)]) == 1010);
  CHECK(BalanceIn(v[AccountKey(3)]) == 995);
  CHECK(BalanceIn(v[AccountKey(4)]) == 1005);
}

TEMPLATE_TEST_CASE("space: a group whose write failed is answered unavailable, its state thrown away", "[server]", Sqlite,
                   Postgres) {
  TestType backend;
  auto db = backend.Open();
  const std::string name = UniqueName("failed");
  auto space = OpenSpace(*db, name);
  REQUIRE(Push(*space, kAlice, {M(1, "open_account", OpenAccountArgs(1, 10, 1000))}).refusal == Refusal::kNone);
  const std::uint64_t before = space->version();
  std::optional<PushResult> a;
  space->Enqueue(PushRequest{kBob, {M(1, "transfer", TransferArgs(1, 2, 10))}}, "id-b",
                 [&](PushResult r) { a = std::move(r); });
  std::unique_ptr<Space::GroupCommit> group = space->Prepare();
  REQUIRE(group != nullptr);
  // The write failed (the disk, the connection): nothing of it was committed.
  CHECK(space->Finish(std::move(group), Status::Internal("the disk is gone")) == nullptr);
  REQUIRE(a.has_value());
  CHECK(a->refusal == Refusal::kUnavailable);
  CHECK(space->version() == before);
  CHECK(space->LastMutationId(kBob) == 0);
  Values v = Read(*space, {AccountKey(1)});
  CHECK(BalanceIn(v[AccountKey(1)]) == 1000);
  // The client resends; it is applied once, here and after a reopen.
  PushResult again = Push(*space, kBob, {M(1, "transfer", TransferArgs(1, 2, 10))}, "id-b");
  CHECK(again.refusal == Refusal::kNone);
  CHECK(again.response.last_mutation_id == 1);
  space.reset();
  space = OpenSpace(*db, name);
  v = Read(*space, {AccountKey(1), AccountKey(2)});
  CHECK(BalanceIn(v[AccountKey(1)]) == 990);
  CHECK(BalanceIn(v[AccountKey(2)]) == 1010);
}

TEST_CASE("space store: a statement that fails within a commit's one round trip leaves nothing of it (PostgreSQL)",
          "[server]") {
  Postgres backend;
  auto db = backend.Open();
  Result<std::unique_ptr<SpaceStore>> store = db->Open(UniqueName("pipeline-failure"));
  REQUIRE(store.ok());
  const std::vector<std::uint8_t> bytes{1, 2, 3};
  // The second put's key is too long for the primary key's index (random
  // letters do not compress): the commit fails after the first put was
  // sent in the same pipeline, and the third comes after it.
  std::string huge(20000, 'a');
  for (char& c : huge) c = static_cast<char>('a' + Rng()() % 26);
  const persistence::Record bad[] = {{persistence::RecordKind::kPack, "aaaa", bytes},
                                     {persistence::RecordKind::kPack, huge, bytes},
                                     {persistence::RecordKind::kManifest, "cccc", bytes}};
  persistence::WriteBatch batch;
  batch.puts = bad;
  const Status failed = (*store)->Apply(batch);
  INFO(failed.ToString());
  CHECK_FALSE(failed.ok());
  CHECK((*store)->Get(persistence::RecordKind::kPack, "aaaa").status().IsNotFound());
  CHECK((*store)->Get(persistence::RecordKind::kManifest, "cccc").status().IsNotFound());
  // The connection and its prepared statements still work.
  const persistence::Record good[] = {{persistence::RecordKind::kPack, "aaaa", bytes},
                                      {persistence::RecordKind::kManifest, "cccc", bytes}};
  batch.puts = good;
  REQUIRE((*store)->Apply(batch).ok());
  Result<std::vector<std::uint8_t>> got = (*store)->Get(persistence::RecordKind::kPack, "aaaa");
  REQUIRE(got.ok());
  CHECK(*got == bytes);
  CHECK((*store)->Get(persistence::RecordKind::kManifest, "cccc").ok());
}

TEST_CASE("space: two processes on one PostgreSQL database apply every mutation exactly once", "[server]") {
  Postgres backend;
  auto db1 = backend.Open();
  auto db2 = backend.Open();
  const std::string name = UniqueName("race");
  auto a = OpenSpace(*db1, name, 101);
  auto b = OpenSpace(*db2, name, 202);
  // A poke's patch follows the version right before its own: after a
  // conflict the group ran again from the version it caught up with.
  int patches = 0, misplaced = 0;
  const auto heard = [&](const Space::Poke& poke) {
    if (!poke.patch_from) return;
    ++patches;
    if (*poke.patch_from + 1 != poke.version) ++misplaced;
  };
  a->Subscribe(heard);
  b->Subscribe(heard);
  constexpr std::uint32_t kAccounts = 8;
  constexpr std::int64_t kInitial = 1000;
  REQUIRE(Push(*a, "opener-0001", {M(1, "open_account", OpenAccountArgs(1, kAccounts, kInitial))}).refusal ==
          Refusal::kNone);
  // Four clients, each pushing its mutations in small batches, each batch to
  // a Space picked at random, sometimes resending the previous batch: the
  // Spaces keep conflicting and catching up with each other.
  constexpr int kClients = 4, kPerClient = 60;
  std::map<std::string, std::uint64_t> sent;
  std::map<std::string, std::vector<Mutation>> previous;
  std::int64_t moved_to_1 = 0;
  std::uint64_t pushes = 0;
  while (true) {
    bool any = false;
    for (int c = 0; c < kClients; ++c) {
      const std::string client = "racer-000" + std::to_string(c);
      Space& target = (Rng()() & 1) ? *a : *b;
      std::vector<Mutation> batch;
      if ((Rng()() % 4) == 0 && !previous[client].empty()) {
        batch = previous[client];  // a resend
      } else {
        for (int i = 0; i < 3 && sent[client] < kPerClient; ++i) {
          const std::uint64_t id = ++sent[client];
          // Every mutation moves 1 from account c+2 to account 1.
          batch.push_back(M(id, "transfer", TransferArgs(c + 2, 1, 1)));
          ++moved_to_1;
        }
      }
      if (batch.empty()) continue;
      any = true;
      previous[client] = batch;
      PushResult r = Push(target, client, batch, "id-" + client);
      INFO(r.message);
      REQUIRE(r.refusal == Refusal::kNone);
      CHECK(r.response.last_mutation_id >= batch.back().id);
      CHECK(r.response.failed.empty());
      ++pushes;
    }
    if (!any) break;
  }
  CHECK(patches > 0);
  CHECK(misplaced == 0);
  // Each Space catches up; both agree, and every transfer happened once.
  REQUIRE(a->CatchUp().ok());
  REQUIRE(b->CatchUp().ok());
  CHECK(a->version() == b->version());
  std::vector<std::string> keys{"ledger"};
  for (std::uint32_t i = 1; i <= kAccounts; ++i) keys.push_back(AccountKey(i));
  Values va = Read(*a, keys), vb = Read(*b, keys);
  CHECK(va == vb);
  CHECK(BalanceIn(va[AccountKey(1)]) == kInitial + moved_to_1);
  std::int64_t total = 0;
  for (std::uint32_t i = 1; i <= kAccounts; ++i) total += BalanceIn(va[AccountKey(i)]);
  const auto* ledger = flatbuffers::GetRoot<ledger::Ledger>(va["ledger"]->data());
  CHECK(total == ledger->total());
  CHECK(ledger->transfers() == static_cast<std::uint64_t>(moved_to_1));
  for (int c = 0; c < kClients; ++c) {
    CHECK(a->LastMutationId("racer-000" + std::to_string(c)) == kPerClient);
    CHECK(b->LastMutationId("racer-000" + std::to_string(c)) == kPerClient);
  }
  INFO("pushes: " << pushes);
}

}  // namespace
}  // namespace keepstate::server
