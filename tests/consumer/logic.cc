// The consumer's business logic: a mutator and a migration, registered as a
// module of its own registers them.
#include <string>

#include "keepstate/engine/store.h"
#include "keepstate/sdk/module.h"

namespace {

using keepstate::Result;
using keepstate::Status;
using keepstate::sdk::Args;
using keepstate::sdk::Bytes;
using keepstate::sdk::Context;
using keepstate::sdk::Task;

Task<Result<Bytes>> Greet(Context& ctx, Args args) {
  const std::string who(args.begin(), args.end());
  Status wrote = ctx.Write([&](keepstate::engine::Txn& txn) { return txn.Put("greeting", "hello " + who); });
  if (!wrote.ok()) co_return wrote;
  co_return Bytes(who.begin(), who.end());
}
KEEPSTATE_MUTATOR("greet", Greet);

Status AddSchema(keepstate::engine::Txn& txn) { return txn.Put("schema", "1"); }
KEEPSTATE_MIGRATION(1, AddSchema);

}  // namespace
