// keepstate::sdk: mutators registered by name run as fibers through a
// CallQueue, write in atomic transactions that never suspend, and report
// errors and a vanished store as values.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "keepstate/engine/store.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/sdk/builtins.h"
#include "keepstate/sdk/module.h"

namespace {

using keepstate::Code;
using keepstate::Result;
using keepstate::Status;
using keepstate::engine::Store;
using keepstate::engine::Txn;
using keepstate::sdk::Args;
using keepstate::sdk::Bytes;
using keepstate::sdk::CallQueue;
using keepstate::sdk::Context;
using keepstate::sdk::Task;
namespace sched = keepstate::scheduler;

struct TestHost final : keepstate::sdk::StoreHost {
  std::unique_ptr<Store> store = std::move(Store::Create().value());
  int changed = 0;
  bool gone = false;
  Result<Store*> Find(std::uint32_t handle) override {
    if (gone || handle != 1) return Status::Closed("store gone");
    return store.get();
  }
  void Changed(std::uint32_t) override { ++changed; }
};

std::string Text(const Bytes& b) { return std::string(b.begin(), b.end()); }

// Puts args under "k", then yields, then puts "k2" in a second transaction.
Task<Result<Bytes>> TwoWrites(Context& ctx, Args args) {
  const std::string value(args.begin(), args.end());
  Status s = ctx.Write([&](Txn& txn) -> Status {
    CHECK(sched::NoSuspendScope::Active());
    return txn.Put("k", value);
  });
  if (!s.ok()) co_return s;
  co_await sched::Yield();
  s = ctx.Write([&](Txn& txn) { return txn.Put("k2", value); });
  if (!s.ok()) co_return s;
  co_return Bytes{'o', 'k'};
}

// Writes, then fails inside the same transaction.
Task<Result<Bytes>> WriteThenFail(Context& ctx, Args) {
  Status s = ctx.Write([&](Txn& txn) -> Status {
    KEEPSTATE_RETURN_IF_ERROR(txn.Put("doomed", "x"));
    return Status::InvalidArgument("changed my mind");
  });
  co_return s;
}

struct Fixture {
  Fixture() {
    static bool registered = false;
    if (!registered) {
      REQUIRE(keepstate::sdk::Register("two_writes", TwoWrites).ok());
      REQUIRE(keepstate::sdk::Register("write_then_fail", WriteThenFail).ok());
      registered = true;
    }
  }
  TestHost host;
  sched::Scheduler scheduler;
  CallQueue calls{&scheduler, &host};
};

Args ArgsOf(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

}  // namespace

TEST_CASE("a call runs its mutator as a fiber and returns its bytes", "[sdk]") {
  Fixture f;
  Result<std::uint32_t> id = f.calls.Start("two_writes", 1, ArgsOf("v"));
  REQUIRE(id.ok());
  CHECK(*id != 0);
  CHECK_FALSE(f.calls.Take().has_value());  // nothing runs before the scheduler does
  f.scheduler.RunUntilIdle();
  auto outcome = f.calls.Take();
  REQUIRE(outcome.has_value());
  CHECK(outcome->id == *id);
  CHECK(outcome->status.ok());
  CHECK(Text(outcome->result) == "ok");
  std::string v;
  REQUIRE(f.host.store->Get("k2", &v).ok());
  CHECK(v == "v");
  CHECK(f.host.changed == 2);
  CHECK(f.calls.in_flight() == 0);
}

TEST_CASE("an unknown mutator or a duplicate name is invalid-argument", "[sdk]") {
  Fixture f;
  Result<std::uint32_t> id = f.calls.Start("nope", 1, {});
  REQUIRE_FALSE(id.ok());
  CHECK(id.status().code() == Code::kInvalidArgument);
  CHECK(id.status().message().find("two_writes") != std::string::npos);
  CHECK(keepstate::sdk::Register("two_writes", TwoWrites).code() == Code::kInvalidArgument);
  CHECK(keepstate::sdk::Register("", TwoWrites).code() == Code::kInvalidArgument);
}

TEST_CASE("a failing transaction applies nothing and its status is the call's outcome", "[sdk]") {
  Fixture f;
  REQUIRE(f.calls.Start("write_then_fail", 1, {}).ok());
  f.scheduler.RunUntilIdle();
  auto outcome = f.calls.Take();
  REQUIRE(outcome.has_value());
  CHECK(outcome->status.code() == Code::kInvalidArgument);
  CHECK(outcome->status.message() == "changed my mind");
  CHECK_FALSE(f.host.store->Contains("doomed"));
  CHECK(f.host.changed == 0);
  CHECK_FALSE(f.host.store->write_open());
}

TEST_CASE("a store that goes away between transactions makes the next one closed", "[sdk]") {
  Fixture f;
  REQUIRE(f.calls.Start("two_writes", 1, ArgsOf("v")).ok());
  // Run until the first transaction committed and the fiber yielded.
  while (!f.host.store->Contains("k")) f.scheduler.RunFor(sched::Duration(0));
  f.host.gone = true;
  f.scheduler.RunUntilIdle();
  auto outcome = f.calls.Take();
  REQUIRE(outcome.has_value());
  CHECK(outcome->status.code() == Code::kClosed);
  CHECK_FALSE(f.host.store->Contains("k2"));
}

TEST_CASE("calls interleave only between transactions and finish in completion order", "[sdk]") {
  Fixture f;
  auto a = f.calls.Start("two_writes", 1, ArgsOf("a"));
  auto b = f.calls.Start("two_writes", 1, ArgsOf("b"));
  REQUIRE((a.ok() && b.ok()));
  f.scheduler.RunUntilIdle();
  auto first = f.calls.Take(), second = f.calls.Take();
  REQUIRE((first && second));
  CHECK(first->id == *a);
  CHECK(second->id == *b);
  std::string v;
  REQUIRE(f.host.store->Get("k2", &v).ok());
  CHECK(v == "b");
  CHECK(f.host.changed == 4);
}

namespace {

Status MigrateTo5(Txn& txn) { return txn.Put("m/5", "ran"); }
Status MigrateTo7(Txn& txn) {
  std::string five;
  if (!txn.Get("m/5", &five).ok()) return Status::InvalidArgument("migration 5 did not run first");
  return txn.Put("m/7", "ran after " + five);
}
Status MigrateTo9(Txn&) { return Status::Corruption("row 3 cannot be converted"); }
KEEPSTATE_MIGRATION(7, MigrateTo7);  // registered before 5: order is by version, not registration
KEEPSTATE_MIGRATION(5, MigrateTo5);

}  // namespace

TEST_CASE("migrations run in version order above the stored version, and an error names its version") {
  REQUIRE(keepstate::sdk::RegisteredMigrations().size() == 2);
  CHECK(keepstate::sdk::RegisteredMigrations().front().first == 5);
  CHECK(keepstate::sdk::RegisterMigration(5, MigrateTo5).code() == Code::kInvalidArgument);
  CHECK(keepstate::sdk::RegisterMigration(0, MigrateTo5).code() == Code::kInvalidArgument);
  CHECK(keepstate::sdk::RegisterMigration(8, nullptr).code() == Code::kInvalidArgument);
  auto store = std::move(Store::Create().value());
  {
    Result<Txn> txn = store->BeginWrite();
    REQUIRE(txn.ok());
    REQUIRE(keepstate::sdk::RunMigrations(*txn, 0, 7).ok());
    REQUIRE(txn->Commit().ok());
  }
  std::string v;
  REQUIRE(store->Get("m/7", &v).ok());
  CHECK(v == "ran after ran");
  {
    // Above the stored version only: from 5, only 7 runs (and fails without 5's key in a fresh store).
    auto fresh = std::move(Store::Create().value());
    Result<Txn> txn = fresh->BeginWrite();
    REQUIRE(txn.ok());
    CHECK(keepstate::sdk::RunMigrations(*txn, 5, 7).message() == "migration to schema version 7: migration 5 did not run first");
    CHECK(keepstate::sdk::RunMigrations(*txn, 7, 100).ok());  // nothing above 7
  }
  REQUIRE(keepstate::sdk::RegisterMigration(9, MigrateTo9).ok());
  Result<Txn> txn = store->BeginWrite();
  REQUIRE(txn.ok());
  const Status s = keepstate::sdk::RunMigrations(*txn, 7, 9);
  CHECK(s.code() == Code::kCorruption);
  CHECK(s.message() == "migration to schema version 9: row 3 cannot be converted");
}

namespace {
// Reads "k" (read-only).
Task<Result<Bytes>> ReadK(Context& ctx, Args) {
  KEEPSTATE_CO_ASSIGN_OR_RETURN(const Store* store, ctx.Read());
  std::string v;
  Status s = store->Get("k", &v);
  if (!s.ok()) co_return s;
  co_return Bytes(v.begin(), v.end());
}
}  // namespace

TEST_CASE("a query is read-only: its reads work, a write fails with unsupported naming it", "[sdk]") {
  Fixture f;
  static bool registered = false;
  if (!registered) {
    REQUIRE(keepstate::sdk::RegisterQuery("read_k", ReadK).ok());
    // A query that tries to write: the same function as the mutator.
    REQUIRE(keepstate::sdk::RegisterQuery("two_writes", TwoWrites).ok());
    registered = true;
  }
  CHECK(keepstate::sdk::RegisterQuery("read_k", ReadK).code() == Code::kInvalidArgument);
  CHECK(keepstate::sdk::RegisterQuery("", ReadK).code() == Code::kInvalidArgument);
  REQUIRE(f.host.store->Put("k", "value").ok());
  const int changed = f.host.changed;

  REQUIRE(f.calls.StartQuery("read_k", 1, {}).ok());
  REQUIRE(f.calls.StartQuery("two_writes", 1, ArgsOf("w")).ok());
  Result<std::uint32_t> unknown = f.calls.StartQuery("transfer", 1, {});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().message().find("no query named \"transfer\"") != std::string::npos);
  f.scheduler.RunUntilIdle();
  auto read = f.calls.Take();
  REQUIRE(read.has_value());
  CHECK(read->status.ok());
  CHECK(Text(read->result) == "value");
  auto write = f.calls.Take();
  REQUIRE(write.has_value());
  CHECK(write->status.code() == Code::kUnsupported);
  CHECK(write->status.message().find("query \"two_writes\" is read-only") != std::string::npos);
  std::string v;
  CHECK(f.host.store->Get("k", &v).ok());
  CHECK(v == "value");
  CHECK_FALSE(f.host.store->Contains("k2"));
  CHECK(f.host.changed == changed);
  // The mutator of the same name still writes.
  REQUIRE(f.calls.Start("two_writes", 1, ArgsOf("w")).ok());
  f.scheduler.RunUntilIdle();
  CHECK(f.calls.Take()->status.ok());
  CHECK(f.host.store->Contains("k2"));
}

TEST_CASE("the built-in keepstate.put and keepstate.delete write as the store's own put and delete", "[sdk]") {
  Fixture f;
  const std::string put = std::string("\x03\0\0\0", 4) + "key" + "value";
  REQUIRE(f.calls.Start("keepstate.put", 1, ArgsOf(put)).ok());
  f.scheduler.RunUntilIdle();
  auto outcome = f.calls.Take();
  REQUIRE(outcome.has_value());
  REQUIRE(outcome->status.ok());
  std::string v;
  REQUIRE(f.host.store->Get("key", &v).ok());
  CHECK(v == "value");

  REQUIRE(f.calls.Start("keepstate.delete", 1, ArgsOf("key")).ok());
  f.scheduler.RunUntilIdle();
  REQUIRE(f.calls.Take()->status.ok());
  CHECK(f.host.store->Get("key", &v).IsNotFound());

  // Truncated args: a typed error, nothing written.
  for (const std::string& bad : {std::string("\x03\0", 2), std::string("\x09\0\0\0", 4) + "short"}) {
    REQUIRE(f.calls.Start("keepstate.put", 1, ArgsOf(bad)).ok());
    f.scheduler.RunUntilIdle();
    auto failed = f.calls.Take();
    CHECK(failed->status.code() == Code::kInvalidArgument);
  }
  CHECK(f.host.store->Count() == 0);
  // An app cannot take a built-in's name (or any of keepstate's).
  CHECK(keepstate::sdk::Register("keepstate.put", TwoWrites).code() == Code::kInvalidArgument);
  CHECK(keepstate::sdk::Register("keepstate.mine", TwoWrites).code() == Code::kInvalidArgument);
}
