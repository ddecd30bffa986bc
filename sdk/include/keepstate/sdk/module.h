// keepstate SDK: business logic in C++, run as fibers against the store.
//
// A *mutator* is a named coroutine
//
//   Task<Result<Bytes>> Transfer(Context& ctx, std::span<const std::uint8_t> args);
//
// registered once (KEEPSTATE_MUTATOR("transfer", Transfer) at namespace
// scope, or sdk::Register from keepstate_module_init-style code that runs
// before the first call). JS runs it with `store.call("transfer", args)`:
// the module's C ABI (js-bindings/exports.cc) spawns a fiber in the engine's
// scheduler, and the fiber's result (bytes, or an error Status whose code and
// message become a typed JS error) resolves the call's promise.
//
// Transactions: a mutator reads and writes through Context::Write(fn), which
// runs fn(Txn&) as one atomic write transaction of the call's store. fn is a
// plain (non-coroutine) callable and runs inside a NoSuspendScope: a write
// transaction never suspends, which is what makes transactions serializable
// on the cooperative scheduler. Between transactions a mutator may co_await
// anything (Yield, SleepFor, tokens, other Tasks) — other calls then run, and
// the store may even be closed or reloaded, in which case the next Write
// returns Closed.
//
// Invariants:
//  - Names are unique; a name is registered at most once (a duplicate at
//    static-initialization time aborts with a message: it is a build bug).
//  - A CallQueue's call ids are never 0 and increase; every started call
//    produces exactly one outcome, including when its store went away.
//
// A *query* is a read-only named function with the same signature,
// registered with KEEPSTATE_QUERY("audit", Audit) in a registry of its own
// (a name may be both a mutator and a query). JS runs it on a read replica
// (pool.call, docs/pool.md) or on the store (keepstate_query): its Context
// is read-only, so Context::Write fails with Unsupported naming the query,
// and nothing it does marks the store dirty.
//
// Thread safety: none (one thread, like the scheduler).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "keepstate/engine/store.h"
#include "keepstate/scheduler/no_suspend.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/task.h"
#include "keepstate/status.h"

namespace keepstate::sdk {

using Bytes = scheduler::Bytes;
template <typename T = void>
using Task = scheduler::Task<T>;
using Args = std::span<const std::uint8_t>;

// How a Context reaches its store. The module's C ABI implements it over its
// open stores; tests implement it over a bare engine::Store.
class StoreHost {
 public:
  virtual ~StoreHost() = default;
  // The store behind `handle`; Closed if it was closed or reloaded (a reload
  // replaces the engine store) since the call started.
  virtual Result<engine::Store*> Find(std::uint32_t handle) = 0;
  // A write transaction of that store committed at least one write (the
  // host marks the store dirty and may arm its autosave).
  virtual void Changed(std::uint32_t handle) = 0;
};

// What a mutator sees of the world: the store of the call.
class Context {
 public:
  Context(StoreHost* host, std::uint32_t store) : host_(host), store_(store) {}
  // The context of query `query` (read-only: Write fails with Unsupported).
  Context(StoreHost* host, std::uint32_t store, std::string query)
      : host_(host), store_(store), query_(std::move(query)) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs fn(engine::Txn&) as one atomic write transaction. fn returns Status
  // or Result<T>; if it is an error nothing is applied and the error is
  // returned, otherwise the transaction commits (OutOfSpace if memory cannot
  // grow; then nothing is applied) and fn's result is returned.
  // Errors besides fn's own: Closed (store gone), Busy (another write
  // transaction is open — only if some code suspended with one open),
  // Unsupported (this is a query's context: queries are read-only).
  // REQUIRES: fn does not suspend (checked: NoSuspendScope).
  template <typename Fn>
  auto Write(Fn&& fn) -> std::invoke_result_t<Fn&, engine::Txn&>;

  // The store for reads outside a transaction (the committed-in-memory
  // state). The pointer is valid until the mutator next suspends.
  // Errors: Closed.
  Result<const engine::Store*> Read() const {
    Result<engine::Store*> s = host_->Find(store_);
    if (!s.ok()) return s.status();
    return static_cast<const engine::Store*>(*s);
  }

  std::uint32_t store_handle() const { return store_; }
  // Whether this is a query's context (read-only).
  bool read_only() const { return !query_.empty(); }

 private:
  StoreHost* host_;
  std::uint32_t store_;
  std::string query_;  // the query's name; empty: a mutator's context
};

using Mutator = Task<Result<Bytes>> (*)(Context& ctx, Args args);

// Registers `fn` under `name`. Errors: InvalidArgument for an empty name or
// one already registered.
Status Register(std::string_view name, Mutator fn);
// The mutator registered under `name` (or the built-in of that name,
// builtins.h), or nullptr.
Mutator Find(std::string_view name);
// Every registered name, sorted.
std::vector<std::string> RegisteredNames();

// Queries: read-only functions, in a registry of their own (see above).
using Query = Task<Result<Bytes>> (*)(Context& ctx, Args args);
// Registers query `fn` under `name`. Errors: InvalidArgument for an empty
// name, a null fn, or a query name already registered.
Status RegisterQuery(std::string_view name, Query fn);
// The query registered under `name`, or nullptr.
Query FindQuery(std::string_view name);
// Every registered query name, sorted.
std::vector<std::string> RegisteredQueryNames();

// A schema migration of state whose shape C++ owns: when a store opens with
// a stored schema version below `version`, fn(txn) runs in the open's one
// migration transaction (with every other migration above the stored
// version, in ascending order, then the app's JS `migrate`), and the
// transaction sets the schema version. An error aborts all of it: the store
// does not open and the stored data stays as it was (docs/sdk.md).
using Migration = Status (*)(engine::Txn& txn);
// Registers `fn` for `version`. Errors: InvalidArgument for version 0, a null
// fn, or a version already registered.
Status RegisterMigration(std::uint64_t version, Migration fn);
// The registered migrations, ascending by version.
std::vector<std::pair<std::uint64_t, Migration>> RegisteredMigrations();
// Runs, in `txn`, every registered migration with from < version <= to, in
// order; the first error stops it (the caller aborts the transaction).
Status RunMigrations(engine::Txn& txn, std::uint64_t from, std::uint64_t to);

// The outcome of one call.
struct CallOutcome {
  std::uint32_t id = 0;
  Status status;  // the mutator's error, or ok
  Bytes result;   // the mutator's bytes if status is ok
};

// Calls in flight on one scheduler: Start spawns a fiber per call; finished
// calls wait in a FIFO until the host Takes them (JS polls after each
// scheduler slice).
class CallQueue {
 public:
  // REQUIRES: scheduler and host outlive the queue and its fibers.
  CallQueue(scheduler::Scheduler* scheduler, StoreHost* host) : scheduler_(scheduler), host_(host) {}

  // Starts mutator `name` with a copy of `args` on `store`; returns the call
  // id. Errors: InvalidArgument (no mutator has that name), Closed (the
  // scheduler is shut down).
  Result<std::uint32_t> Start(std::string_view name, std::uint32_t store, Args args);
  // Starts query `name` (read-only context) with a copy of `args` on
  // `store`; returns the call id, taken like a mutator's. Errors:
  // InvalidArgument (no query has that name), Closed.
  Result<std::uint32_t> StartQuery(std::string_view name, std::uint32_t store, Args args);
  // The oldest finished call's outcome, if any.
  std::optional<CallOutcome> Take();
  // Calls started and not yet taken.
  std::size_t in_flight() const { return in_flight_; }

 private:
  Result<std::uint32_t> Spawn(Mutator fn, std::uint32_t store, Args args, std::string query);
  // `query`: the query's name (its context is read-only); empty for a mutator.
  Task<void> Run(Mutator fn, std::uint32_t store, Bytes args, std::uint32_t id, std::string query);

  scheduler::Scheduler* scheduler_;
  StoreHost* host_;
  std::deque<CallOutcome> done_;
  std::uint32_t next_id_ = 1;
  std::size_t in_flight_ = 0;
};

namespace detail {
// Register() for static initializers: aborts (with the name) on an error.
bool RegisterAtStartup(const char* name, Mutator fn);
bool RegisterMigrationAtStartup(std::uint64_t version, Migration fn);
bool RegisterQueryAtStartup(const char* name, Query fn);
}  // namespace detail

template <typename Fn>
auto Context::Write(Fn&& fn) -> std::invoke_result_t<Fn&, engine::Txn&> {
  using R = std::invoke_result_t<Fn&, engine::Txn&>;
  static_assert(std::is_same_v<R, Status> || std::is_constructible_v<R, Status>,
                "Write(fn): fn must return Status or Result<T>");
  if (read_only()) {
    return R(Status::Unsupported("query \"" + query_ +
                                 "\" is read-only: it cannot write (Context::Write); register code that writes "
                                 "with KEEPSTATE_MUTATOR"));
  }
  Result<engine::Store*> store = host_->Find(store_);
  if (!store.ok()) return R(store.status());
  Result<engine::Txn> txn = (*store)->BeginWrite();
  if (!txn.ok()) return R(txn.status());
  // The transaction must run to completion without suspending: any co_await
  // of a scheduler awaitable inside fn reports a violation.
  scheduler::NoSuspendScope no_suspend;
  R result = fn(*txn);
  if (!result.ok()) {
    txn->Abort();
    return result;
  }
  const bool wrote = txn->pending_writes() > 0;
  Status committed = txn->Commit();
  if (!committed.ok()) return R(std::move(committed));
  if (wrote) host_->Changed(store_);
  return result;
}

}  // namespace keepstate::sdk

// At namespace scope in a module source: registers `fn` under `name` before
// main/first call (static initialization of that translation unit, which
// keepstate_add_module links directly into the module, so it is never
// dropped by the linker).
#define KEEPSTATE_MUTATOR(name, fn)                                                   \
  [[maybe_unused]] static const bool KEEPSTATE_CONCAT_(keepstate_mutator_, __LINE__) = \
      ::keepstate::sdk::detail::RegisterAtStartup(name, fn)

// At namespace scope in a module source: registers read-only query `fn`
// under `name` (see RegisterQuery), like KEEPSTATE_MUTATOR.
#define KEEPSTATE_QUERY(name, fn)                                                   \
  [[maybe_unused]] static const bool KEEPSTATE_CONCAT_(keepstate_query_, __LINE__) = \
      ::keepstate::sdk::detail::RegisterQueryAtStartup(name, fn)

// At namespace scope in a module source: registers migration `fn` for schema
// version `version` (see RegisterMigration), like KEEPSTATE_MUTATOR.
#define KEEPSTATE_MIGRATION(version, fn)                                                   \
  [[maybe_unused]] static const bool KEEPSTATE_CONCAT_(keepstate_migration_, __LINE__) = \
      ::keepstate::sdk::detail::RegisterMigrationAtStartup(version, fn)
