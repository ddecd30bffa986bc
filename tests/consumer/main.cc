// The consumer's program: a store committed and reopened through keepstate's
// persistence (in memory), and the consumer's registered mutator and
// migration visible to the SDK. Exits 0 when all of it holds.
#include <cstdio>
#include <string>

#include "keepstate/engine/store.h"
#include "keepstate/persistence/session.h"
#include "keepstate/sdk/module.h"

namespace persistence = keepstate::persistence;

static int Fail(const char* what) {
  std::fprintf(stderr, "consumer: %s\n", what);
  return 1;
}

int main() {
  persistence::MemoryRecordStore records;
  std::string value;
  {
    persistence::StoreSession session{persistence::PersisterOptions{}};
    persistence::OpenReport report;
    auto arena = session.Open(records, &report);
    if (!arena.ok()) return Fail("open");
    auto store = keepstate::engine::Store::FromArena(std::move(*arena), true);
    if (!store.ok() || !(*store)->Put("k", "v").ok()) return Fail("put");
    if (!session.Commit((*store)->arena(), records, 1).ok()) return Fail("commit");
  }
  persistence::StoreSession again{persistence::PersisterOptions{}};
  persistence::OpenReport report;
  auto arena = again.Open(records, &report);
  if (!arena.ok() || report.restored_version != 1) return Fail("reopen");
  auto store = keepstate::engine::Store::FromArena(std::move(*arena), true);
  if (!store.ok() || !(*store)->Get("k", &value).ok() || value != "v") return Fail("read back");
  if (keepstate::sdk::Find("greet") == nullptr) return Fail("the mutator is not registered");
  if (keepstate::sdk::RegisteredMigrations().size() != 1) return Fail("the migration is not registered");
  std::printf("consumer: ok (version %llu)\n", static_cast<unsigned long long>(report.restored_version));
  return 0;
}
