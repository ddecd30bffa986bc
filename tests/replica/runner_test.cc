// Runner: a named mutator runs to completion on a Replica natively, its
// writes land in the Replica (dirty, committed by the host), its error is
// the outcome and applies nothing, and a replaced Replica is not written.
#include <catch2/catch.hpp>

#include <string>

#include "keepstate/persistence/record_store.h"
#include "keepstate/replica/replica.h"
#include "keepstate/replica/runner.h"
#include "keepstate/scheduler/scheduler.h"

namespace keepstate::replica {
namespace {

using persistence::MemoryRecordStore;

// Puts args under "k" after a yield and a sleep (the runner must drive the
// scheduler through both), answering "ok".
sdk::Task<Result<sdk::Bytes>> PutAfterSleep(sdk::Context& ctx, sdk::Args args) {
  co_await scheduler::Yield();
  co_await scheduler::SleepFor(std::chrono::milliseconds(1));
  const std::string value(args.begin(), args.end());
  Status s = ctx.Write([&](engine::Txn& txn) { return txn.Put("k", value); });
  if (!s.ok()) co_return s;
  co_return sdk::Bytes{'o', 'k'};
}

sdk::Task<Result<sdk::Bytes>> PutThenFail(sdk::Context& ctx, sdk::Args) {
  co_return ctx.Write([&](engine::Txn& txn) -> Status {
    KEEPSTATE_RETURN_IF_ERROR(txn.Put("doomed", "x"));
    return Status::InvalidArgument("no");
  });
}

KEEPSTATE_MUTATOR("runner_test.put_after_sleep", PutAfterSleep);
KEEPSTATE_MUTATOR("runner_test.put_then_fail", PutThenFail);

persistence::PersisterOptions Options() {
  persistence::PersisterOptions o;
  o.store_id = 9;
  o.writer_id = 1;
  o.page_size = 4096;
  return o;
}

sdk::Args ArgsOf(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

TEST_CASE("runner: a mutator runs to completion and its writes land in the replica", "[replica]") {
  MemoryRecordStore records;
  Replica r(Options());
  REQUIRE(r.Restore(records).ok());
  Runner runner(&r);
  Result<sdk::Bytes> out = runner.Run("runner_test.put_after_sleep", ArgsOf("v1"));
  REQUIRE(out.ok());
  CHECK(std::string(out->begin(), out->end()) == "ok");
  std::string v;
  REQUIRE(r.Get(false, "k", &v).ok());
  CHECK(v == "v1");
  CHECK(r.dirty());
  REQUIRE(r.Commit(records, 0).ok());
  CHECK(r.version() == 1);
  // Again: the runner is reusable, call after call.
  REQUIRE(runner.Run("runner_test.put_after_sleep", ArgsOf("v2")).ok());
  REQUIRE(r.Get(false, "k", &v).ok());
  CHECK(v == "v2");
}

TEST_CASE("runner: a failing mutator's error is the outcome and applies nothing", "[replica]") {
  MemoryRecordStore records;
  Replica r(Options());
  REQUIRE(r.Restore(records).ok());
  Runner runner(&r);
  Result<sdk::Bytes> out = runner.Run("runner_test.put_then_fail", {});
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == Code::kInvalidArgument);
  CHECK(out.status().message() == "no");
  CHECK(r.Has(false, "doomed").code() == Code::kNotFound);
  CHECK_FALSE(r.dirty());
  CHECK(runner.Run("runner_test.nope", {}).status().code() == Code::kInvalidArgument);
}

TEST_CASE("runner: without an open replica a call is Closed", "[replica]") {
  Runner none;
  CHECK(none.Run("runner_test.put_after_sleep", {}).status().code() == Code::kClosed);
  Replica unopened(Options());
  Runner runner(&unopened);
  CHECK(runner.Run("runner_test.put_after_sleep", {}).status().code() == Code::kClosed);
  MemoryRecordStore records;
  Replica r(Options());
  REQUIRE(r.Restore(records).ok());
  runner.set_replica(&r);
  CHECK(runner.Run("runner_test.put_after_sleep", ArgsOf("x")).ok());
}

}  // namespace
}  // namespace keepstate::replica
