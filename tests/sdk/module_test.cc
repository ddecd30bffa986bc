// keepstate::sdk: mutators registered by name run as fibers through a
// CallQueue, write in atomic transactions that never suspend, and report
// errors and a vanished store as values.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "keepstate/engine/store.h"
#include "keepstate/scheduler/scheduler.h"
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
