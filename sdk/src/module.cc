// The mutator registry and the call queue (see keepstate/sdk/module.h).
#include "keepstate/sdk/module.h"

#include "keepstate/sdk/builtins.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>

namespace keepstate::sdk {
namespace {

// Function-local so registrations from static initializers of any
// translation unit find it constructed (no initialization-order fiasco).
std::map<std::string, Mutator, std::less<>>& Registry() {
  static auto* registry = new std::map<std::string, Mutator, std::less<>>();
  return *registry;
}

std::map<std::string, Query, std::less<>>& QueryRegistry() {
  static auto* registry = new std::map<std::string, Query, std::less<>>();
  return *registry;
}

std::map<std::uint64_t, Migration>& MigrationRegistry() {
  static auto* registry = new std::map<std::uint64_t, Migration>();
  return *registry;
}
}  // namespace

Status Register(std::string_view name, Mutator fn) {
  if (name.empty()) return Status::InvalidArgument("a mutator needs a name");
  if (fn == nullptr) return Status::InvalidArgument("mutator \"" + std::string(name) + "\" is null");
  if (name.starts_with(kBuiltinPrefix)) {
    return Status::InvalidArgument("mutator \"" + std::string(name) + "\": names starting with \"" +
                                   std::string(kBuiltinPrefix) + "\" are keepstate's own (builtins.h)");
  }
  auto [it, inserted] = Registry().emplace(std::string(name), fn);
  if (!inserted) return Status::InvalidArgument("mutator \"" + std::string(name) + "\" is already registered");
  return Status::Ok();
}

Status RegisterQuery(std::string_view name, Query fn) {
  if (name.empty()) return Status::InvalidArgument("a query needs a name");
  if (fn == nullptr) return Status::InvalidArgument("query \"" + std::string(name) + "\" is null");
  auto [it, inserted] = QueryRegistry().emplace(std::string(name), fn);
  if (!inserted) return Status::InvalidArgument("query \"" + std::string(name) + "\" is already registered");
  return Status::Ok();
}

Query FindQuery(std::string_view name) {
  auto it = QueryRegistry().find(name);
  return it == QueryRegistry().end() ? nullptr : it->second;
}

std::vector<std::string> RegisteredQueryNames() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : QueryRegistry()) names.push_back(name);
  return names;
}

Status RegisterMigration(std::uint64_t version, Migration fn) {
  const std::string which = "migration to schema version " + std::to_string(version);
  if (version == 0) return Status::InvalidArgument("a migration needs a schema version above 0");
  if (fn == nullptr) return Status::InvalidArgument(which + " is null");
  if (!MigrationRegistry().emplace(version, fn).second) return Status::InvalidArgument(which + " is already registered");
  return Status::Ok();
}

std::vector<std::pair<std::uint64_t, Migration>> RegisteredMigrations() {
  return {MigrationRegistry().begin(), MigrationRegistry().end()};
}

Status RunMigrations(engine::Txn& txn, std::uint64_t from, std::uint64_t to) {
  for (auto it = MigrationRegistry().upper_bound(from); it != MigrationRegistry().end() && it->first <= to; ++it) {
    Status s = it->second(txn);
    if (!s.ok()) return Status(s.code(), "migration to schema version " + std::to_string(it->first) + ": " + s.message());
  }
  return Status::Ok();
}

Mutator Find(std::string_view name) {
  if (Mutator builtin = FindBuiltin(name)) return builtin;
  auto& registry = Registry();
  auto it = registry.find(name);
  return it == registry.end() ? nullptr : it->second;
}

std::vector<std::string> RegisteredNames() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : Registry()) names.push_back(name);
  return names;
}

namespace detail {
bool RegisterAtStartup(const char* name, Mutator fn) {
  Status s = Register(name, fn);
  if (!s.ok()) {
    std::fprintf(stderr, "keepstate: KEEPSTATE_MUTATOR: %s\n", s.ToString().c_str());
    std::abort();
  }
  return true;
}
bool RegisterQueryAtStartup(const char* name, Query fn) {
  Status s = RegisterQuery(name, fn);
  if (!s.ok()) {
    std::fprintf(stderr, "keepstate: KEEPSTATE_QUERY: %s\n", s.ToString().c_str());
    std::abort();
  }
  return true;
}
bool RegisterMigrationAtStartup(std::uint64_t version, Migration fn) {
  Status s = RegisterMigration(version, fn);
  if (!s.ok()) {
    std::fprintf(stderr, "keepstate: KEEPSTATE_MIGRATION: %s\n", s.ToString().c_str());
    std::abort();
  }
  return true;
}
}  // namespace detail

Result<std::uint32_t> CallQueue::Start(std::string_view name, std::uint32_t store, Args args) {
  Mutator mutator = Find(name);
  if (mutator == nullptr) {
    std::string known;
    for (const std::string& n : RegisteredNames()) known += (known.empty() ? "" : ", ") + n;
    return Status::InvalidArgument("no mutator named \"" + std::string(name) + "\" in this module" +
                                   (known.empty() ? " (it registers none)" : " (it has: " + known + ")"));
  }
  return Spawn(mutator, store, args, {});
}

Result<std::uint32_t> CallQueue::StartQuery(std::string_view name, std::uint32_t store, Args args) {
  Query query = FindQuery(name);
  if (query == nullptr) {
    std::string known;
    for (const std::string& n : RegisteredQueryNames()) known += (known.empty() ? "" : ", ") + n;
    return Status::InvalidArgument("no query named \"" + std::string(name) + "\" in this module" +
                                   (known.empty() ? " (it registers none)" : " (it has: " + known + ")"));
  }
  return Spawn(query, store, args, std::string(name));
}

Result<std::uint32_t> CallQueue::Spawn(Mutator fn, std::uint32_t store, Args args, std::string query) {
  if (scheduler_->closed()) return Status::Closed("the scheduler is shut down");
  const std::uint32_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  ++in_flight_;
  // Detached: the fiber reports through done_.
  scheduler_->Spawn(Run(fn, store, Bytes(args.begin(), args.end()), id, std::move(query)));
  return id;
}

std::optional<CallOutcome> CallQueue::Take() {
  if (done_.empty()) return std::nullopt;
  CallOutcome outcome = std::move(done_.front());
  done_.pop_front();
  --in_flight_;
  return outcome;
}

// The fiber of one call. Its frame owns the arguments and the Context, so
// the mutator's span and reference stay valid across its suspensions.
Task<void> CallQueue::Run(Mutator mutator, std::uint32_t store, Bytes args, std::uint32_t id, std::string query) {
  Context ctx(host_, store, std::move(query));
  Result<Bytes> result = co_await mutator(ctx, Args(args.data(), args.size()));
  CallOutcome outcome;
  outcome.id = id;
  if (result.ok()) {
    outcome.result = std::move(*result);
  } else {
    outcome.status = std::move(result).status();
  }
  done_.push_back(std::move(outcome));
}

}  // namespace keepstate::sdk
